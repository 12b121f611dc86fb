"""What a run prints besides its progress bar (its console story): a duration in words, one
line per evaluation, and the closing lines with the commands that come next."""
import math
import sys
import time

import numpy as np
import tqdm

LOG_FILE_REDRAW_S = 60  # a bar written to a file (nohup, a sweep's log) redraws once a minute


def progress_bar(**kwargs):
  """A ``tqdm`` bar that redraws ten times a second on a terminal and once a minute when it
  writes to a file (stderr under ``nohup … > log``, a sweep trial's log), so logs stay readable."""
  interactive = kwargs.get('file', sys.stderr).isatty()
  return tqdm.tqdm(dynamic_ncols=True, mininterval=0.1 if interactive else LOG_FILE_REDRAW_S,
                   **kwargs)


def set_postfix(bar, text):
  """``bar``'s postfix, redrawn no more often than the bar's own ``mininterval``."""
  bar.set_postfix_str(text, refresh=False)
  now = time.monotonic()
  if now - getattr(bar, 'postfix_drawn', -math.inf) >= bar.mininterval:
    bar.refresh()
    bar.postfix_drawn = now


def duration(seconds, about='about '):
  """``about 2.5 h``, ``about 12 min``, ``about 40 s`` (never 0); past two days, how many and
  what to run instead."""
  hours = seconds / 3600
  if hours >= 48:
    return (f'{about}{hours / 24:.0f} days on this machine: for a first run use GIN="mummi '
            'quick" (minutes), and a GPU for the paper\'s schedule')
  if hours >= 1:
    return f'{about}{hours:.1f} h'
  return f'{about}{seconds / 60:.0f} min' if seconds >= 90 else f'{about}{max(seconds, 1):.0f} s'


def evaluation_line(step, results):
  """``eval at N env steps: none 358 ± 50 · medium … (5 episodes each)``."""
  parts = [f'{name} {np.mean(r):.0f} ± {np.std(r):.0f}' for name, r in results.items() if r]
  counts = sorted({len(r) for r in results.values()})
  if len(counts) == 1:
    each = f'{counts[0]} episode' + 's' * (counts[0] != 1) + (' each' if len(results) > 1 else '')
  else:
    each = 'episodes ' + '/'.join(str(len(r)) for r in results.values())
  return f'eval at {step} env steps: ' + ' · '.join(parts) + f' ({each})'


def rate_estimate(rate, remaining):
  """The measured estimate: ``rate`` env steps/s with updates, ``remaining`` env steps."""
  return (f'{rate:.1f} env steps/s with updates: the remaining {remaining} env steps take '
          f'{duration(remaining / rate)}')


def update_estimate(per_update, updates_per_step, remaining, env_rate=None):
  """The first estimate, a lower bound: ``per_update`` s per update, ``updates_per_step``
  updates per env step, and collection at ``env_rate`` env steps/s when known."""
  seconds = per_update * updates_per_step * remaining
  env = ''
  if env_rate:
    seconds += remaining / env_rate
    env = f' and collection at the prefill\'s {env_rate:.0f} env steps/s'
  return (f'updates take {per_update:.2f} s each here: with them{env}, the remaining '
          f'{remaining} env steps take at least {duration(seconds, "")} (evaluations extra)')


def condition_line(name, returns, seconds):
  """``  missing high: 412 ± 38 (10 episodes), 3 min in`` as an evaluation finishes a level."""
  n = len(returns)
  return (f'  missing {name}: {np.mean(returns):.0f} ± {np.std(returns):.0f} ({n} episode'
          f'{"s" * (n != 1)}), {duration(seconds, "")} in')


def end_of_run(logdir, elapsed):
  """The run's closing lines: its logdir, this command's time (``elapsed`` s) and the logged
  training windows of all its sessions, the final and best test return (all sensors), and the
  commands that come next."""
  from mummi_tf.run import logger as logger_lib  # TensorFlow: the sweep's console needs none
  rows = logger_lib.records(logdir)
  tests = [(r['step'], r['test/return_none']) for r in rows if 'test/return_none' in r]
  tests = tests or [(r['step'], r['test/return']) for r in rows if 'test/return' in r]
  logged = sum(r.get('time/wall', 0.0) for r in rows)
  lines = [
      f'run finished: {logdir}; this command took {duration(elapsed, "")} (logged training '
      f'windows of all its sessions: {duration(logged, "")})'
  ]
  if tests:
    (last_step, last), (best_step, best) = tests[-1], max(tests, key=lambda t: t[1])
    lines.append(f'test return (all sensors): final {last:.1f} at {last_step} env steps, best '
                 f'{best:.1f} at {best_step}')
  lines += [
      'next:', f'  .venv/bin/tensorboard --logdir {logdir}',
      f'  make eval LOGDIR={logdir}     # the newest checkpoint, 10 episodes per missing level',
      f'  make export LOGDIR={logdir}', f'  make plot LOGDIR={logdir}'
  ]
  return '\n'.join(lines)
