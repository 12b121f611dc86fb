"""The wall time of a whole `make train GIN="<method> small"` run (walker_stand, the full
setting: 100k env steps), projected from the costs of a short real run of the same
configuration, as a user starts it (`python -m mummi_tf.cli.train`).

The short run keeps `gin/small.gin`'s training window (`Trainer.train_every` env steps with
`Trainer.train_steps` updates spread over them, its batch, sizes and thread pools) and its
evaluation (`Trainer.eval_episodes` per missing level, three levels), and shortens the rest:
a prefill of one window, `repeats + 1` trained windows (the first traces the update and is
dropped) and two evaluations (the first traces the evaluation policy and is dropped). Then,
per timed window,

    projected = prefill x (prefill s per env step)
              + training windows x (the window's wall time - its evaluation)
              + evaluations x (one warm evaluation's wall time)

with the counts of small.gin's schedule (`Trainer.steps`, `prefill`, `eval_every`). What it
leaves out: process start-up and set-up (seconds), and a sweep's final evaluation
(`make sweep`: 10 episodes per level, Table I's protocol) on top of the run's own.
"""
import statistics

import gin

from bench import figures_train
from bench import report
from mummi_tf import gin_files
from mummi_tf.run import schedule as schedule_lib

UNIT = 'min per run'
METHODS = ('mummi', 'dreamer')
GOAL_MIN = 90  # issue 33: a 100k-step `mummi small` run in <= 90 min of time/wall


def schedule(names, bindings=()):
  """Trainer's schedule as the gin files `names` (in gin/), then `bindings`, bind it."""
  from mummi_tf.run import trainer  # noqa: F401  (registers Trainer)
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings([str(gin_files.GIN_DIR / f'{n}.gin') for n in names],
                                        list(bindings))
    keys = ('steps', 'prefill', 'train_every', 'train_steps', 'eval_every', 'eval_episodes')
    return {k: int(gin.query_parameter(f'Trainer.{k}')) for k in keys}
  finally:
    gin.clear_config()


def evaluations(plan):
  """How many evaluations a run of `plan` makes, as the trainer schedules them: after each
  window once the prefill is done, when `schedule.Every(eval_every)` says so, and one at the
  end unless the last window had one."""
  every, step, count, last = schedule_lib.Every(plan['eval_every']), 0, 0, None
  while step < plan['steps']:
    step = min(plan['steps'], step + plan['train_every'])
    if step >= plan['prefill'] and every(step):
      count, last = count + 1, step
  return count + (last != plan['steps'])


def short_run_bindings(plan, windows, extra=()):
  """The short run: small.gin's window, a one-window prefill, `windows` trained windows and
  an evaluation every ~half of them (the first traces, a later one is timed warm)."""
  window = plan['train_every']
  every = window * max(1, windows // 2)  # a second evaluation ends before the last window
  return [
      f'Trainer.prefill = {window}', f'Trainer.log_every = {window}',
      f'Trainer.steps = {window * (windows + 1)}', f'Trainer.eval_every = {every}',
      f'Trainer.save_every = {window * (windows + 2)}'
  ] + list(extra)


def project(plan, prefill_s_per_step, train_window_s, eval_s):
  """Minutes of a whole run of `plan` from the three measured costs."""
  windows = (plan['steps'] - plan['prefill']) / plan['train_every']
  seconds = (
      plan['prefill'] * prefill_s_per_step + windows * train_window_s + evaluations(plan) * eval_s)
  return seconds / 60


def measure(lines, prefill):
  """(prefill s per env step, [the timed windows' wall - evaluation], [warm evaluations' s])
  from a short run's metrics.jsonl lines; None where the lines lack them."""
  timed = [x for x in lines if 'time/wall' in x]
  first = [x for x in timed if x['step'] <= prefill]
  trained = [x for x in timed if x['step'] > prefill]
  evals = [x['time/eval'] for x in trained if x.get('time/eval', 0) > 0][1:]  # first traces
  windows = [x['time/wall'] - x.get('time/eval', 0.0) for x in trained[1:]]  # first traces
  prefill_rate = first[-1]['time/wall'] / prefill if first else None
  return prefill_rate, windows, evals


def figure(method, opts, timeout):
  """`projection/<method>_small`: minutes of a 100k-step run of `<method> small`."""
  name = f'projection/{method}_small'
  names = [method, 'small'] + (['tiny'] if opts['tiny'] else [])
  extra = list(opts.get('extra', ()))
  plan = schedule(names, extra)
  bindings = short_run_bindings(plan, opts['repeats'] + 1, extra)
  lines, _, error = figures_train.train_lines('walker_stand', names, bindings, timeout)
  prefill_rate, windows, evals = measure(lines, plan['train_every'])
  goal = ('value_max', GOAL_MIN) if method == 'mummi' else None
  if prefill_rate is None or not windows or not evals:
    return report.failed(name, UNIT, goal, error or 'the short run logged too few windows')
  eval_s, window_s = statistics.median(evals), statistics.median(windows)
  samples = [project(plan, prefill_rate, w, eval_s) for w in windows]
  parts = {  # the median's three terms (the projection is linear in the window's time)
      'prefill_min': project(plan, prefill_rate, 0, 0),
      'training_min': project(plan, 0, window_s, 0),
      'evaluation_min': project(plan, 0, 0, eval_s)
  }
  return report.figure(
      name, samples, UNIT, goal=goal,
      notes=(f'walker_stand, gin {"+".join(names)}: {plan["steps"]} env steps, '
             f'{(plan["steps"] - plan["prefill"]) // plan["train_every"]} windows of '
             f'{plan["train_every"]} env steps with {plan["train_steps"]} updates each '
             f'(median {window_s:.3g} s without evaluation), '
             f'{evaluations(plan)} evaluations of {plan["eval_episodes"]} episodes x 3 levels '
             f'({eval_s:.3g} s each, warm), prefill {plan["prefill"]} env steps '
             f'({prefill_rate * 1e3:.3g} ms per env step); one sample per timed window of a '
             f'short run (bindings: {"; ".join(bindings)}); start-up and a sweep\'s final '
             'evaluation left out' + (f'; run ended with: {error}' if error else '')), plan=plan,
      window_s=windows, eval_s=evals, prefill_s_per_env_step=prefill_rate, **parts)


def figures(opts, timeout, smoke=False):
  """`projection/<method>_small` per method (MuMMI only in smoke)."""
  return {
      f'projection/{m}_small': figure(m, opts, timeout) for m in (METHODS[:1] if smoke else METHODS)
  }
