#!/usr/bin/env python
"""A sweep of training runs on Ray: tasks x methods (gin files) x seeds, then Table I and curves.

    mummi-sweep --grid smoke --out logdir/sweeps/smoke
    mummi-sweep --grid table1 --out /shared/table1 --cpus_per_run 4 --gpus_per_run 1
    mummi-sweep --tasks walker_walk --methods "mummi small" "dreamer small" \
        --seeds 0 1 2 --out logdir/sweeps/small
    mummi-sweep --out logdir/sweeps/smoke --report

Each trial is one training run, ``python -m mummi_tf.cli.train`` as a subprocess of its Ray task,
in ``OUT/<task>/<gin files joined by ->/seed<S>`` (the Makefile's naming); its output goes to
``sweep.log`` in that logdir. Ray runs as many trials at once as its resources allow
(``--cpus_per_run``, ``--gpus_per_run`` each): a local Ray on this machine, or the cluster at
``--address`` / ``RAY_ADDRESS`` (then OUT must be on storage every node shares, and every node
needs this checkout and its environment at the same path). A trial whose process, Ray worker
or node dies is retried up to ``--max_retries`` times and resumes from its logdir; a usage
error of the trainer (exit 2) is not retried. Rerunning the sweep skips finished trials
(``mummi_tf.run.sweep.finished``); ``--out OUT`` alone reruns the grid saved in
``OUT/sweep.json``.

Every finished trial's newest checkpoint is then evaluated as a Ray task of its own
(mummi_tf/cli/evaluate.py's ``evaluate_logdir``, ``--episodes`` per condition; the returns are kept
in ``logdir/sweep_eval.json`` and reused while the checkpoint is the same), and the sweep
writes ``OUT/table.md`` and ``OUT/table.csv`` (mummi_tf/cli/evaluate.py's ``tabulate``: Table I's
layout, episodes of every seed pooled) and ``OUT/curves.png`` (mummi_tf/cli/plot.py: test return,
mean ± std over seeds). ``--report`` does only that, for the trials finished so far.

Exit status: 0 every trial done and evaluated, 1 some are not, 2 bad input (one line;
nothing created), 130 interrupted (rerun the same command to resume).
"""
import argparse
import collections
import csv
import json
import logging
import os
import pathlib
import signal
import sys

import tqdm

from mummi_tf.cli import evaluate
from mummi_tf.cli import plot
from mummi_tf.run import console
from mummi_tf.run import sweep as sweep_lib

# Passed to every trial's process, also on a cluster's other nodes.
ENV_VARS = ('MUJOCO_GL', 'PYOPENGL_PLATFORM', 'TF_CPP_MIN_LOG_LEVEL')
UsageError = sweep_lib.UsageError


def parse_args(argv):
  parser = argparse.ArgumentParser(prog='python -m mummi_tf.cli.sweep', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', type=pathlib.Path, default=None,
                      help='the sweep folder: trial logdirs, sweep.json, table.md, curves.png')
  parser.add_argument('--grid', default=None,
                      help=f'preset grid: {", ".join(sweep_lib.GRIDS)} (default: OUT/sweep.json)')
  parser.add_argument('--tasks', nargs='+', default=None, help="replace the grid's tasks")
  parser.add_argument(
      '--methods', nargs='+', default=None,
      help="replace the grid's methods; each one quoted, gin files in order "
      "(\"mummi small\")")
  parser.add_argument('--seeds', nargs='+', type=int, default=None, help="replace the grid's")
  parser.add_argument('--gin_binding', '--gin_bindings', '--gin-binding', action='append',
                      default=[], help="added to every trial's, e.g. 'Trainer.steps = 1e5'")
  parser.add_argument(
      '--episodes', type=int, default=None,
      help="evaluation episodes per condition and trial (default: the grid's; "
      'table1, table2: 10 as in the paper')
  parser.add_argument('--cpus_per_run', '--cpus-per-run', type=float, default=1.0,
                      help='Ray CPUs per trial (default 1)')
  parser.add_argument('--gpus_per_run', '--gpus-per-run', type=float, default=0.0,
                      help='Ray GPUs per trial (default 0; 0.5 puts two trials on a GPU)')
  parser.add_argument('--num_cpus', '--num-cpus', type=int, default=None,
                      help='CPUs of the local Ray (default: all of this machine)')
  parser.add_argument('--address', default=None,
                      help='a Ray cluster (default: $RAY_ADDRESS, else a local Ray)')
  parser.add_argument('--max_retries', '--max-retries', type=int, default=3,
                      help='retries of a trial whose process dies (default 3)')
  parser.add_argument('--progress_every', '--progress-every', type=float, default=60.0,
                      help='seconds between lines that only report new steps (default 60)')
  parser.add_argument('--report', action='store_true',
                      help='no training: evaluate the finished trials, write table and curves')
  parser.add_argument('--eval_logdir', type=pathlib.Path, default=None, help=argparse.SUPPRESS)
  return parser.parse_args(argv)


# --------------------------------------------------------------------------- the plan


def plan(args):
  """The grid the command asks for, validated; raises ``UsageError``. Creates nothing."""
  out = args.out
  if out is None:
    raise UsageError('give the sweep folder: --out DIR')
  if out.exists() and not out.is_dir():
    raise UsageError(f'--out {out} is a file, not a folder')
  if args.report and not out.is_dir():
    raise UsageError(f'--report: {out} holds no sweep')
  if args.grid is not None and args.grid not in sweep_lib.GRIDS:
    raise UsageError(f'unknown grid {args.grid!r}; valid: {", ".join(sweep_lib.GRIDS)}')
  base = sweep_lib.GRIDS.get(args.grid) or sweep_lib.load_grid(out)
  if base is None and not (args.tasks and args.methods):
    raise UsageError(f'give --grid ({", ".join(sweep_lib.GRIDS)}) or --tasks and --methods '
                     f'({out} holds no sweep.json)')
  base = base or sweep_lib.Grid((), (), (0,), (), 10)
  methods = tuple(tuple(m.split()) for m in args.methods) if args.methods else base.methods
  seeds = tuple(args.seeds) if args.seeds is not None else base.seeds
  episodes = args.episodes if args.episodes is not None else base.episodes
  grid = sweep_lib.Grid(
      tasks=tuple(args.tasks or base.tasks), methods=methods, seeds=seeds,
      bindings=tuple(base.bindings) + tuple(args.gin_binding), episodes=episodes,
      waves=() if args.methods else base.waves)
  sweep_lib.validate(grid, out)
  return grid


def import_ray():
  """The ``ray`` module; ``UsageError`` saying how to install it when it is missing."""
  try:
    import ray
  except ImportError:
    raise UsageError(f"sweeps run on Ray, which is not installed: {sys.executable} -m pip "
                     "install -e '.[ray]' (make sweep installs it)") from None
  return ray


def start_ray(ray, args):
  """A local Ray (``--num_cpus``) or the cluster at ``--address`` / ``RAY_ADDRESS``. A trial
  that asks for more than a local Ray has is a ``UsageError``; on a cluster, a warning (an
  autoscaler may add nodes)."""
  address = args.address or os.environ.get('RAY_ADDRESS')
  quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
  if address:
    try:
      ray.init(address=address, **quiet)
    except ConnectionError as e:
      raise UsageError(f'no Ray cluster at --address {address}: {e}') from None
  else:
    ray.init(num_cpus=args.num_cpus or os.cpu_count(), include_dashboard=False, **quiet)
  have = ray.cluster_resources()
  for name, want in (('CPU', args.cpus_per_run), ('GPU', args.gpus_per_run)):
    if want > have.get(name, 0):
      message = (f'each trial asks for {want:g} {name} (--{name.lower()}s_per_run) and this Ray '
                 f'has {have.get(name, 0):g}')
      if not address:
        raise UsageError(message)
      print(f'warning: {message}: trials wait until the cluster has them', file=sys.stderr)


# ------------------------------------------------------------------------ evaluations


def eval_file(logdir):
  return pathlib.Path(logdir) / 'sweep_eval.json'


def evaluated(logdir, episodes):
  """The cached evaluation of the newest checkpoint with ``episodes`` per condition, or
  None."""
  try:
    cached = json.loads(eval_file(logdir).read_text())
  except (OSError, ValueError):
    return None
  current = (sweep_lib.newest_checkpoint(logdir), int(episodes))
  return cached if (cached.get('checkpoint'), cached.get('episodes')) == current else None


def eval_args(logdir, episodes):
  """The ``python`` arguments of one logdir's evaluation (``evaluate_one`` below)."""
  return ['-m', 'mummi_tf.cli.sweep', '--eval_logdir', str(logdir), '--episodes', str(episodes)]


def evaluate_one(logdir, episodes):
  """In its own process (TensorFlow): mummi_tf/cli/evaluate.py's ``evaluate_logdir`` on the newest
  checkpoint, the returns written to ``logdir/sweep_eval.json``."""
  from mummi_tf.cli import import_tensorflow_quietly
  import_tensorflow_quietly()
  checkpoint = sweep_lib.newest_checkpoint(logdir)
  try:
    task, method, returns = evaluate.evaluate_logdir(logdir, episodes)
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  result = {'checkpoint': checkpoint, 'episodes': episodes, 'task': task, 'method': method}
  result['returns'] = {c: [float(r) for r in values] for c, values in returns.items()}
  tmp = eval_file(logdir).with_suffix('.tmp')
  tmp.write_text(json.dumps(result, indent=2) + '\n')
  tmp.replace(eval_file(logdir))
  return 0


# ---------------------------------------------------------------------------- the run


def capacity(ray, args):
  """How many trials the Ray cluster runs at once: its CPUs (and GPUs, when trials ask for
  them) over what one trial asks for; at least one."""
  have = ray.cluster_resources()
  fits = [have.get('CPU', 0) // args.cpus_per_run] if args.cpus_per_run > 0 else []
  if args.gpus_per_run > 0:
    fits.append(have.get('GPU', 0) // args.gpus_per_run)
  return max(1, int(min(fits))) if fits else 1


class Driver:
  """Trials and evaluations as Ray tasks; one line per trial as it changes, a bar overall.

  Jobs wait here, not in Ray's queue, and go out as the cluster has room (``capacity``):
  the evaluation of a trial that has just finished, or the retry of one whose worker died, goes
  before every trial not yet started, so a sweep cut short still holds each finished trial's
  evaluation (Ray would run a task submitted late after all those submitted before it).
  """
  def __init__(self, ray, states, args, episodes, train=True):
    self.ray, self.states, self.episodes, self.train = ray, states, episodes, train
    self.every = args.progress_every
    self.remote = ray.remote(sweep_lib.run_command).options(
        num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run, max_retries=0)
    self.env = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    self.capacity = capacity(ray, args)
    self.waiting = collections.deque()  # (kind, state, args) not yet given to Ray
    self.jobs = {}  # Ray object ref -> ('train' | 'eval', TrialState)
    self.bar = console.progress_bar(total=len(states), desc='sweep', unit='trial')

  def run(self):
    self._show()
    for state in self.states:
      self._next(state)
    self._start_waiting()
    while self.jobs:
      ready, _ = self.ray.wait(list(self.jobs), num_returns=len(self.jobs), timeout=1.0)
      for ref in ready:
        self._ended(ref)
      self._start_waiting()
      self._show()
    self.bar.close()

  def _next(self, state):
    """Evaluates a done trial (before any trial that waits), trains one that is neither
    done nor failed, else counts it."""
    if state.state == 'done' and evaluated(state.trial.logdir, self.episodes) is None:
      state.note = 'evaluating'
      self.waiting.appendleft(('eval', state, eval_args(state.trial.logdir, self.episodes)))
    elif state.state not in ('done', 'failed') and self.train:
      self.waiting.append(('train', state, sweep_lib.train_args(state.trial)))
    else:
      self.bar.update(1)

  def _start_waiting(self):
    while self.waiting and len(self.jobs) < self.capacity:
      kind, state, args = self.waiting.popleft()
      if kind == 'train':
        sweep_lib.record(state.trial)
        state.submitted()
      ref = self.remote.remote(args, str(state.log), self.env)
      self.jobs[ref] = (kind, state)

  def _ended(self, ref):
    kind, state = self.jobs.pop(ref)
    status = self._status(ref)
    if kind == 'train':
      if state.conclude(status) == 'retrying':  # resumes before any trial that waits
        self.waiting.appendleft(('train', state, sweep_lib.train_args(state.trial)))
      else:
        self._next(state)
      return self._print(state)  # now: a retry may be running by the next look
    ok = evaluated(state.trial.logdir, self.episodes) is not None
    state.note = 'evaluated' if ok else f'evaluation failed: {sweep_lib.last_line(state.log)}'
    self.bar.update(1)

  def _print(self, state):
    line = state.changed(self.every)
    if line:
      tqdm.tqdm.write(line)

  def _status(self, ref):
    """The attempt's exit status, or the name of the Ray error that ended it."""
    try:
      return self.ray.get(ref)
    except self.ray.exceptions.RayError as e:
      return type(e).__name__

  def _show(self):
    for state in self.states:
      state.refresh()
      self._print(state)
    counts = collections.Counter(s.state for s in self.states)
    console.set_postfix(self.bar, ', '.join(f'{n} {k}' for k, n in counts.items()))


# ------------------------------------------------------------------------- the report


def report(states, out, episodes):
  """``OUT/table.md``, ``OUT/table.csv`` from the evaluated trials and ``OUT/curves.png``
  from every trial with a test return; returns the paths written."""
  written = []
  results = pooled_returns(states, episodes)
  if results:
    written += write_table(results, out)
  logdirs = [str(s.trial.logdir) for s in states if s.metrics.tested is not None]
  if logdirs:
    runs = plot.load_runs(logdirs, 'test/return', 'ours', 'task/method/seed')
    if runs:
      written.append(plot.plot(plot.aggregate(runs), out / 'curves.png', 'test/return'))
  return written


def pooled_returns(states, episodes):
  """``{(task, method label, condition): [returns]}`` over the evaluated trials; the label
  names the gin files beyond the method's, as mummi_tf/cli/plot.py's curves do."""
  label = plot.read_run_json
  results = collections.defaultdict(list)
  for state in states:
    cached = evaluated(state.trial.logdir, episodes)
    if cached is None:
      continue
    method = label(state.trial.logdir).get('method', cached['method'])
    for condition, returns in cached['returns'].items():
      results[(cached['task'], method, condition)].extend(returns)
  return results


def write_table(results, out):
  """mummi_tf/cli/evaluate.py's Table I (markdown) and rows (CSV), as its own CLI writes them."""
  rows, markdown = evaluate.tabulate(results)
  with open(out / 'table.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  (out / 'table.md').write_text(markdown)
  print(markdown)
  return [out / 'table.md', out / 'table.csv']


# --------------------------------------------------------------------------- the tool


def needs_ray(states, args, episodes):
  """Whether any trial is left to train (unless ``--report``) or to evaluate."""
  unevaluated = any(
      s.state == 'done' and evaluated(s.trial.logdir, episodes) is None for s in states)
  return unevaluated or (not args.report and any(s.state != 'done' for s in states))


def prepare(args):
  """The grid, its trial states and, when work is left, the ``ray`` module; raises
  ``UsageError`` before anything is created."""
  grid = plan(args)
  states = [sweep_lib.TrialState(t, args.max_retries) for t in sweep_lib.expand(grid, args.out)]
  for state in states:
    if sweep_lib.finished(state.trial):
      state.state, state.note = 'done', 'finished before'
    elif args.report:
      state.note = 'not finished'
  return grid, states, import_ray() if needs_ray(states, args, grid.episodes) else None


def _interrupt(signum, frame):
  raise KeyboardInterrupt


def stop_on_signals():
  """``kill PID`` (SIGTERM) stops the sweep as Ctrl-C does (each running trial saves first), and
  so does ``kill -INT`` of a sweep started in the background (``nohup … &``), where SIGINT
  comes ignored. Installed after Ray starts, which sets its own SIGTERM handler."""
  signal.signal(signal.SIGTERM, _interrupt)
  signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.eval_logdir is not None:
    return evaluate_one(args.eval_logdir, args.episodes or 10)
  ray, states = None, None
  try:
    grid, states, ray_module = prepare(args)
    if ray_module is not None:
      ray = ray_module
      start_ray(ray, args)
    stop_on_signals()
    if not args.report:
      sweep_lib.save_grid(args.out, grid)
    if ray is not None:
      Driver(ray, states, args, grid.episodes, train=not args.report).run()
    else:
      for state in states:
        state.refresh()
        print(state.line())
    return summarize(states, args.out, grid.episodes)
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    running = [s.trial.logdir for s in states if s.state == 'running'] if states else []
    if running:
      print(
          f'interrupted: stopping {len(running)} running trial(s) with a checkpoint of every '
          'update ...', file=sys.stderr)
      sweep_lib.stop_trials(running)
    print('interrupted: rerun the same command to resume', file=sys.stderr)
    return 130
  finally:
    if ray is not None:
      ray.shutdown()


def summarize(states, out, episodes):
  """The report and one closing line; the exit status (0: every trial done and evaluated)."""
  written = report(states, out, episodes)
  complete = sum(evaluated(s.trial.logdir, episodes) is not None for s in states)
  counts = collections.Counter(s.state for s in states)
  trials = f'{len(states)} trial' + ('s' if len(states) != 1 else '')
  print(f'sweep {out}: {trials}, ' + ', '.join(f'{n} {k}' for k, n in sorted(counts.items())) +
        f', {complete} evaluated; wrote ' + (', '.join(str(p) for p in written) or 'nothing'))
  return 0 if complete == len(states) else 1


if __name__ == '__main__':
  sys.exit(main())
