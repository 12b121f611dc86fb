"""Sweeps: a grid of training runs (tasks x gin files x seeds), each in its own logdir.

The library half of ``mummi_tf/cli/sweep.py``, which launches every trial as a Ray task: the preset
grids, a trial's logdir and command, what a logdir says about its run (env steps, latest test
return, finished or not), the driver's view of one trial, and ``run_command``, the body of a
Ray task (one ``python ...`` subprocess, killed with its parent). Nothing here imports
TensorFlow or Ray.

A trial's logdir is ``OUT/<task>/<gin files joined by ->/seed<S>``, the Makefile's naming. A
run is finished when its newest checkpoint is at or past its ``Trainer.steps`` and the
evaluation at that checkpoint's step is logged (``run_finished``): the trainer's own last
acts, in that order (docs/ARCHITECTURE.md).
"""

import collections
import json
import math
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import time

from mummi_tf.run import checkpoints
from mummi_tf import envs as envs_lib
from mummi_tf import errors
from mummi_tf import gin_files

UsageError = errors.UsageError

# ``waves``: how many of ``methods`` run seed by seed together, in order; () gives every method
# a wave of its own (all seeds of the first method, then the next).
Grid = collections.namedtuple('Grid', 'tasks methods seeds bindings episodes waves', defaults=((),))
Trial = collections.namedtuple('Trial', 'task gin seed bindings logdir')

PAPER_METHODS = (('mummi',), ('mummi_b',), ('cvrl',), ('dreamer',))
# Two toy-world runs of 600 env steps (a checkpoint every 100 after the prefill, evaluations at
# 300 and 600): about 20 s each on an idle 2-core CPU, TF start-up included.
SMOKE_BINDINGS = (
    'Trainer.steps = 600',
    'Trainer.prefill = 100',
    'Trainer.train_every = 100',
    'Trainer.train_steps = 5',
    'Trainer.batch_size = 4',
    'Trainer.batch_length = 8',
    'Trainer.eval_every = 300',
    'Trainer.eval_episodes = 2',
    'Trainer.log_every = 100',
    'Trainer.save_every = 100',
    'ActorCritic.horizon = 3',
)
GRIDS = {
    'table1': Grid(
        tasks=('walker_stand', 'walker_walk', 'walker_run', 'finger_spin', 'cup_catch'),
        methods=PAPER_METHODS, seeds=(0, 1, 2), bindings=(), episodes=10),
    'table2': Grid(
        tasks=('table_wiping',), methods=PAPER_METHODS, seeds=(0, 1, 2), bindings=(), episodes=10),
    # Table I's walker_stand row on a 2-core CPU (small.gin, 100k env steps, one run at a time):
    # MuMMI and Dreamer seed by seed first, so each finished pair is a paired comparison; then
    # CVRL's seeds, then MuMMI-b's.
    'walker_stand_small': Grid(
        tasks=('walker_stand',),
        methods=tuple(m + ('small',) for m in (('mummi',), ('dreamer',), ('cvrl',), ('mummi_b',))),
        seeds=(0, 1, 2), bindings=(), episodes=10, waves=(2, 1, 1)),
    # The plain-RGB rung (no background, no depth or touch, nothing missing) with seeds, on the
    # same CPU budget: where plain Dreamer stands against DreamerV3 at 100k env steps.
    'walker_stand_plain_small': Grid(
        tasks=('walker_stand',), methods=(('dreamer', 'plain', 'small'),), seeds=(0, 1, 2),
        bindings=(), episodes=10),
    # Issue 32's first two switches, each a gin file after MuMMI's, two seeds each at first;
    # compared with the walker_stand_small sweep's MuMMI seeds.
    'walker_stand_ablations': Grid(
        tasks=('walker_stand',), methods=(('mummi', 'small', 'ablate_touch_weight'),
                                          ('mummi', 'small', 'ablate_poe_eq11')), seeds=(0, 1),
        bindings=(), episodes=10, waves=(2,)),
    'smoke': Grid(
        tasks=('toy2d_x_y',), methods=(('mummi', 'toy2d_learn'), ('dreamer', 'toy2d_learn')),
        seeds=(0,), bindings=SMOKE_BINDINGS, episodes=2),
}
_BINDING = re.compile(r'[\w./]+ *= *\S.*')  # [scope/]Configurable.param = value
_STEPS = re.compile(r'^Trainer\.steps *= *(\S+) *$', re.M)
# Sets PR_SET_PDEATHSIG (Linux), then becomes the real command: nothing runs between fork and
# exec (subprocess's preexec_fn would, in a Ray worker's threads).
_EXEC_WITH_PARENT = ('import ctypes, os, signal, sys\n'
                     'libc = ctypes.CDLL(None)\n'
                     'if hasattr(libc, "prctl"):\n'
                     '  libc.prctl(1, signal.SIGKILL)\n'
                     'if os.getppid() != int(sys.argv[1]):\n'
                     '  sys.exit(1)\n'
                     'os.execv(sys.executable, [sys.executable] + sys.argv[2:])\n')

# ------------------------------------------------------------------------------ the grid


def gin_name(name):
  """A gin file's name in logdirs and run.json: ``quick`` for ``quick`` or ``a/quick.gin``."""
  return pathlib.Path(name).stem if name.endswith('.gin') else name


def logdir_of(out, task, gin, seed):
  """``OUT/<task>/<gin files joined by ->/seed<S>`` (the Makefile's LOGDIR)."""
  return pathlib.Path(out) / task / '-'.join(gin_name(g) for g in gin) / f'seed{seed}'


def expand(grid, out):
  """Every trial of ``grid`` in the order it runs: tasks, then the waves of methods, then
  seeds, then the methods of a wave; logdirs under ``out``."""
  return [
      Trial(task, tuple(gin), int(seed), tuple(grid.bindings), logdir_of(out, task, gin, seed))
      for task in grid.tasks
      for wave in waves(grid)
      for seed in grid.seeds
      for gin in wave
  ]


def waves(grid):
  """``grid.methods`` cut into its waves (one method each when ``grid.waves`` is empty)."""
  sizes = grid.waves or (1,) * len(grid.methods)
  starts = [sum(sizes[:i]) for i in range(len(sizes))]
  return [grid.methods[start:start + size] for start, size in zip(starts, sizes)]


def validate(grid, out):
  """Raises ``UsageError`` (one line) for a grid or OUT no trial could run with."""
  out = pathlib.Path(out)
  if out.exists() and not out.is_dir():
    raise UsageError(f'--out {out} is a file, not a folder')
  if not (grid.tasks and grid.methods and grid.seeds):
    raise UsageError('the grid is empty: it needs tasks, methods and seeds')
  for task in grid.tasks:
    if envs_lib.canonical_task(task) not in envs_lib.TASKS:
      raise UsageError(f'unknown task {task!r}; valid: {", ".join(envs_lib.TASKS)}')
  for gin in grid.methods:
    if not gin:
      raise UsageError('a method needs at least one gin file')
    for name in gin:
      gin_files.resolve(name)
  if grid.waves and (sum(grid.waves) != len(grid.methods) or min(grid.waves) < 1):
    raise UsageError(f'the waves {list(grid.waves)} do not cut the {len(grid.methods)} methods')
  for binding in grid.bindings:
    if not _BINDING.fullmatch(binding):
      raise UsageError(f"bad gin binding {binding!r}; expected 'Configurable.param = value'")
  if grid.episodes < 1:
    raise UsageError(f'--episodes must be >= 1, got {grid.episodes}')


def save_grid(out, grid):
  """``OUT/sweep.json``: the grid, so ``--out OUT`` alone reruns or reports the sweep."""
  _write_json(pathlib.Path(out) / 'sweep.json', grid._asdict())


def load_grid(out):
  """The grid saved in ``OUT/sweep.json``, or None."""
  path = pathlib.Path(out) / 'sweep.json'
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  return Grid(
      tasks=tuple(saved['tasks']), methods=tuple(tuple(m) for m in saved['methods']), seeds=tuple(
          saved['seeds']), bindings=tuple(saved['bindings']), episodes=int(saved['episodes']),
      waves=tuple(saved.get('waves', ())))


def train_args(trial):
  """The trial's ``python`` arguments: ``-m mummi_tf.cli.train --task T --logdir L ...``."""
  args = ['-m', 'mummi_tf.cli.train', '--task', trial.task, '--logdir', str(trial.logdir)]
  args += ['--seed', str(trial.seed)]
  for name in trial.gin:
    args += ['--gin_file', name]
  for binding in trial.bindings:
    args += ['--gin_binding', binding]
  return args


# ------------------------------------------------------------------- what a logdir says


def target_steps(logdir):
  """``Trainer.steps`` of the run's operative config (None before the run has started)."""
  try:
    match = _STEPS.search((pathlib.Path(logdir) / 'operative_config.gin').read_text())
  except OSError:
    return None
  return int(float(match.group(1))) if match else None


def newest_checkpoint(logdir):
  """The env step of the newest checkpoint (None without one)."""
  found = checkpoints.candidates(pathlib.Path(logdir) / 'checkpoints')
  return checkpoints.step_of(found[0]) if found else None


class MetricsTail:
  """Reads ``metrics.jsonl`` as it grows: the last step and the latest ``test/return``."""
  def __init__(self, path):
    self.path = pathlib.Path(path)
    self.step, self.test, self.tested = None, None, None
    self._offset, self._partial = 0, b''

  def update(self):
    """Reads the lines appended since the last call; returns self."""
    try:
      with open(self.path, 'rb') as f:
        f.seek(self._offset)
        data = f.read()
    except OSError:
      return self
    self._offset += len(data)
    lines = (self._partial + data).split(b'\n')
    self._partial = lines.pop()  # a line still being written
    for line in lines:
      self._read(line)
    return self

  def _read(self, line):
    try:
      row = json.loads(line)
    except ValueError:  # a line cut short by a crash
      return
    if not isinstance(row, dict) or not isinstance(row.get('step'), (int, float)):
      return
    self.step = max(self.step or 0, int(row['step']))
    test = row.get('test/return')
    if isinstance(test, (int, float)) and math.isfinite(test):
      self.test, self.tested = float(test), int(row['step'])


def run_finished(logdir):
  """True when the run in ``logdir`` has ended: its newest checkpoint is at or past its
  ``Trainer.steps`` and the evaluation at that checkpoint's step is in ``metrics.jsonl``."""
  steps, saved = target_steps(logdir), newest_checkpoint(logdir)
  if steps is None or saved is None or saved < steps:
    return False
  tested = MetricsTail(pathlib.Path(logdir) / 'metrics.jsonl').update().tested
  return tested is not None and tested >= saved


def record(trial):
  """``logdir/sweep.json``: what the sweep asked of this logdir (before its first attempt)."""
  _write_json(trial.logdir / 'sweep.json', _request(trial))


def finished(trial):
  """The trial's run has ended, and with what this sweep asks (not, e.g., fewer steps)."""
  try:
    recorded = json.loads((trial.logdir / 'sweep.json').read_text())
  except (OSError, ValueError):
    return False
  return recorded == _request(trial) and run_finished(trial.logdir)


def _request(trial):
  return {
      'task': trial.task,
      'gin': list(trial.gin),
      'seed': trial.seed,
      'bindings': list(trial.bindings)
  }


def _write_json(path, value):
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(value, indent=2) + '\n')
  tmp.replace(path)


# ----------------------------------------------------------------- the driver's view


class TrialState:
  """One trial as the driver sees it: its state (pending, running, retrying, done or failed),
  attempts, and progress read from its logdir.

  ``pending``/``retrying`` become ``running`` when the Ray task has started (its log grew).
  """
  def __init__(self, trial, max_retries):
    self.trial, self.max_retries = trial, int(max_retries)
    self.state, self.attempts, self.note = 'pending', 0, ''
    self.target = None
    self.metrics = MetricsTail(trial.logdir / 'metrics.jsonl')
    self._log_size = 0
    self._line, self._key, self._shown_at = None, None, 0.0

  @property
  def log(self):
    return self.trial.logdir / 'sweep.log'

  def submitted(self):
    """A new attempt was handed to Ray."""
    self.attempts += 1
    self.state = 'pending' if self.attempts == 1 else 'retrying'
    self._log_size, self.target = _size(self.log), None

  def refresh(self):
    """Reads the logdir: started yet, steps, latest test return."""
    started = self.attempts and _size(self.log) > self._log_size
    if self.state in ('pending', 'retrying') and started:
      self.state = 'running'
    self.target = self.target or target_steps(self.trial.logdir)
    self.metrics.update()

  def conclude(self, status):
    """An attempt ended with exit ``status`` (an int, or a Ray error's name): done, failed,
    or retrying (the caller resubmits). Returns the new state."""
    self.refresh()
    if finished(self.trial):
      self.state, self.note = 'done', ''
    elif status == 2:  # the trainer's usage error: a retry would fail the same way
      self.state, self.note = 'failed', f'exit 2: {last_line(self.log)}'
    elif self.attempts > self.max_retries:
      self.state = 'failed'
      self.note = f'{_exit(status)} in {self.attempts} attempts; see {self.log}'
    else:
      self.state, self.note = 'retrying', f'attempt {self.attempts} {_exit(status)}'
    return self.state

  def line(self):
    """``task · gin files · seedS · step N/M · test R · state [note]``."""
    step = '-' if self.metrics.step is None else self.metrics.step
    target = '?' if self.target is None else self.target
    test = '-' if self.metrics.test is None else f'{self.metrics.test:.1f}'
    details = [self.note] if self.note else []
    if self.state == 'running' and self.attempts > 1:
      details.insert(0, f'attempt {self.attempts} of {self.max_retries + 1}')
    t = self.trial
    return (f'{t.task} · {" ".join(t.gin)} · seed{t.seed} · step {step}/{target} · test {test} · '
            f'{self.state}' + (f' ({"; ".join(details)})' if details else ''))

  def changed(self, every, now=None):
    """The line when it should be shown: a new state, note or test return at once, new
    steps at most every ``every`` seconds; else None."""
    now = time.monotonic() if now is None else now
    line, key = self.line(), (self.state, self.note, self.metrics.test)
    if line == self._line or (key == self._key and now - self._shown_at < every):
      return None
    self._line, self._key, self._shown_at = line, key, now
    return line


def _size(path):
  try:
    return path.stat().st_size
  except OSError:
    return 0


def _last_byte(path):
  with open(path, 'rb') as f:
    f.seek(-1, os.SEEK_END)
    return f.read(1)


def _exit(status):
  if isinstance(status, int):
    return f'killed by signal {-status}' if status < 0 else f'exit {status}'
  return str(status)


def last_line(path):
  """The last non-empty line of a text file ('' without one)."""
  try:
    lines = [l.strip() for l in pathlib.Path(path).read_text(errors='replace').splitlines()]
  except OSError:
    return ''
  lines = [l for l in lines if l]
  return lines[-1] if lines else ''


def stop_trials(logdirs, timeout=120.0):
  """SIGTERM to the training process that holds each of ``logdirs`` on this machine (the pid
  its ``.lock`` names, checked against ``/proc``), then waits up to ``timeout`` s for them to
  save their updates and exit (``mummi_tf.run.preemption``: exit 143). Returns the logdirs
  stopped. Processes on other nodes of a cluster are left to their Ray workers."""
  import signal
  stopped = {}
  for logdir in logdirs:
    try:
      pid = int((pathlib.Path(logdir) / '.lock').read_text().split()[1])
      command = pathlib.Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode()
    except (OSError, ValueError, IndexError):
      continue
    if 'mummi_tf.cli.train' in command and str(logdir) in command:
      try:
        os.kill(pid, signal.SIGTERM)
        stopped[pid] = logdir
      except ProcessLookupError:
        pass
  deadline = time.monotonic() + timeout
  while stopped and time.monotonic() < deadline:
    for pid in list(stopped):
      if not _alive(pid):
        stopped.pop(pid)
    time.sleep(0.2)
  return [logdir for logdir in logdirs if logdir not in stopped.values()]


def _alive(pid):
  """Whether ``pid`` runs (a zombie waiting for its parent counts as ended)."""
  try:
    state = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
  except (OSError, IndexError):
    return False
  return state != 'Z'


# -------------------------------------------------------------------------- the Ray task


def run_command(args, log, env=None):
  """Runs ``python ARGS`` (this interpreter) to its end and returns its exit status
  (negative: killed by that signal). Its output is appended to ``log`` after a header line
  (time, host, command). The process dies with its parent (Linux ``PR_SET_PDEATHSIG``), so a
  Ray worker that dies leaves no training process holding the logdir. ``env``: variables set
  on top of this process's environment."""
  log = pathlib.Path(log)
  log.parent.mkdir(parents=True, exist_ok=True)
  command = [sys.executable, '-c', _EXEC_WITH_PARENT, str(os.getpid()), *args]
  environment = {**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})}
  with open(log, 'a') as f:
    if f.tell() and _last_byte(log) != b'\n':  # a killed process's unfinished line
      f.write('\n')
    f.write(f'# {time.strftime("%Y-%m-%d %H:%M:%S")} {socket.gethostname()} '
            f'python {shlex.join(str(a) for a in args)}\n')
    f.flush()
    return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                          env=environment).returncode
