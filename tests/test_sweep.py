"""mummi_tf/cli/sweep.py and mummi_tf/run/sweep.py: grids, bad input, finished runs, retries on Ray.

The end-to-end test runs the ``smoke`` grid on a local Ray, kills one trial's training
process (SIGKILL, once its logdir has a checkpoint) and checks that the sweep retries it, that
it resumes, that both logdirs finish and the table and curves are written, and that a rerun
skips both trials.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from mummi_tf import gin_files
from mummi_tf.run import sweep
from mummi_tf.envs import robosuite_wipe

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOL = ['-m', 'mummi_tf.cli.sweep']  # as make sweep runs it
ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', 'MUJOCO_GL': 'egl'}


@pytest.fixture(scope='module')
def tool(load_tool):
  return load_tool('sweep')


def plan(tool, *argv):
  return tool.plan(tool.parse_args(list(argv)))


# ------------------------------------------------------------------------------- grids


def test_presets_are_the_papers_grids(tmp_path):
  table1 = sweep.expand(sweep.GRIDS['table1'], tmp_path)
  assert len(table1) == 5 * 4 * 3
  assert {t.task for t in table1} == {
      'walker_stand', 'walker_walk', 'walker_run', 'finger_spin', 'cup_catch'
  }
  assert {t.gin for t in table1} == {('mummi',), ('mummi_b',), ('cvrl',), ('dreamer',)}
  assert {t.seed for t in table1} == {0, 1, 2}
  assert sweep.GRIDS['table2'].tasks == robosuite_wipe.TASKS
  smoke = sweep.expand(sweep.GRIDS['smoke'], tmp_path)
  assert len(smoke) == 2 and all(t.bindings == sweep.SMOKE_BINDINGS for t in smoke)


def test_the_walker_stand_row_runs_mummi_and_dreamer_seed_by_seed_first(tool, tmp_path):
  trials = sweep.expand(
      plan(tool, '--grid', 'walker_stand_small', '--out', str(tmp_path)), tmp_path)
  order = [(t.gin[0], t.seed) for t in trials]
  assert order == [('mummi', 0), ('dreamer', 0), ('mummi', 1), ('dreamer', 1), ('mummi', 2),
                   ('dreamer', 2), ('cvrl', 0), ('cvrl', 1), ('cvrl', 2), ('mummi_b', 0),
                   ('mummi_b', 1), ('mummi_b', 2)]
  assert {t.gin[1:] for t in trials} == {('small',)} and {t.task for t in trials
                                                         } == {'walker_stand'}
  sweep.save_grid(tmp_path, sweep.GRIDS['walker_stand_small'])
  assert sweep.load_grid(tmp_path) == sweep.GRIDS['walker_stand_small']  # --out alone resumes it
  with pytest.raises(sweep.UsageError, match='waves'):
    sweep.validate(sweep.GRIDS['walker_stand_small']._replace(waves=(2, 1)), tmp_path)


def test_the_ablation_grid_switches_one_thing_each(tmp_path):
  """Issue 32's ablations: each a gin file after mummi + small that binds one parameter."""
  import gin
  from mummi_tf.model import world_model  # noqa: F401  (its configurables)
  trials = sweep.expand(sweep.GRIDS['walker_stand_ablations'], tmp_path)
  assert [(t.gin[-1], t.seed) for t in trials
         ] == [('ablate_touch_weight', 0), ('ablate_poe_eq11', 0), ('ablate_touch_weight', 1),
               ('ablate_poe_eq11', 1)]
  expected = {
      'ablate_touch_weight': ('WorldModel.vector_weight', 0.1),
      'ablate_poe_eq11': ('WorldModel.fusion', 'poe_eq11')
  }
  for name, (parameter, value) in expected.items():
    gin.clear_config()
    gin.parse_config_files_and_bindings(
        [str(gin_files.resolve(f)) for f in ('mummi', 'small', name)], [])
    assert gin.query_parameter(parameter) == value
    gin.clear_config()
    gin.parse_config_files_and_bindings([str(gin_files.resolve(f)) for f in ('mummi', 'small')], [])
    assert gin.query_parameter(parameter) != value  # MuMMI's own value differs


def test_the_grid_expands_to_the_makefiles_logdirs(tool, tmp_path):
  grid = plan(tool, '--out', str(tmp_path), '--tasks', 'walker_walk', 'cup_catch', '--methods',
              'mummi small', 'dreamer', '--seeds', '0', '4', '--gin_binding', 'Trainer.steps = 1e5')
  trials = sweep.expand(grid, tmp_path)
  assert len(trials) == 8
  first = trials[0]
  assert first.logdir == tmp_path / 'walker_walk' / 'mummi-small' / 'seed0'
  assert trials[-1].logdir == tmp_path / 'cup_catch' / 'dreamer' / 'seed4'
  assert sweep.train_args(first) == [
      '-m', 'mummi_tf.cli.train', '--task', 'walker_walk', '--logdir',
      str(first.logdir), '--seed', '0', '--gin_file', 'mummi', '--gin_file', 'small',
      '--gin_binding', 'Trainer.steps = 1e5'
  ]
  # A preset's bindings come first, the command line's after them; --out alone reuses it.
  grid = plan(tool, '--grid', 'smoke', '--out', str(tmp_path), '--gin_binding', 'A.b = 1')
  assert grid.bindings == sweep.SMOKE_BINDINGS + ('A.b = 1',) and grid.episodes == 2
  sweep.save_grid(tmp_path, grid)
  assert plan(tool, '--out', str(tmp_path)) == grid


@pytest.mark.parametrize('argv, message', [
    (['--grid', 'table3'],
     "unknown grid 'table3'; valid: table1, table2, walker_stand_small, walker_stand_plain_small, walker_stand_ablations, smoke"
    ),
    (['--grid', 'smoke', '--tasks', 'walker_fly'], "unknown task 'walker_fly'"),
    (['--grid', 'smoke', '--methods', 'mummi nosuch'], "unknown gin file 'nosuch'"),
    (['--grid', 'smoke', '--gin_binding', 'steps'], "bad gin binding 'steps'"),
    ([],
     'give --grid (table1, table2, walker_stand_small, walker_stand_plain_small, walker_stand_ablations, smoke) or --tasks and --methods'
    ),
    (['--grid', 'smoke', '--report'], '--report: '),
])
def test_bad_input_is_one_line_and_creates_nothing(tool, tmp_path, capsys, argv, message):
  out = tmp_path / 'sweep'
  assert tool.main(argv + ['--out', str(out)]) == 2
  err = capsys.readouterr().err
  assert err.startswith('error: ') and err.count('\n') == 1 and message in err, err
  assert not out.exists()


def test_out_that_is_a_file_is_refused(tool, tmp_path, capsys):
  out = tmp_path / 'file'
  out.write_text('x')
  assert tool.main(['--grid', 'smoke', '--out', str(out)]) == 2
  assert capsys.readouterr().err == f'error: --out {out} is a file, not a folder\n'
  assert out.read_text() == 'x'


def test_without_ray_one_line_says_how_to_install_it(tmp_path):
  shadow = tmp_path / 'shadow' / 'ray'
  shadow.mkdir(parents=True)
  (shadow / '__init__.py').write_text("raise ImportError('No module named ray')\n")
  out = tmp_path / 'sweep'
  result = subprocess.run([sys.executable, *TOOL, '--grid', 'smoke', '--out',
                           str(out)], env={
                               **ENV, 'PYTHONPATH': str(shadow.parent)
                           }, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2, result.stderr
  assert result.stderr.count('\n') == 1 and "pip install -e '.[ray]'" in result.stderr
  assert not out.exists()


# -------------------------------------------------------------------- finished or not


def test_a_run_is_finished_after_its_last_checkpoint_and_evaluation(tmp_path):
  trial = sweep.expand(sweep.GRIDS['smoke'], tmp_path)[0]
  logdir = trial.logdir
  (logdir / 'checkpoints').mkdir(parents=True)
  assert not sweep.run_finished(logdir)
  (logdir / 'operative_config.gin').write_text('Trainer.prefill = 100\nTrainer.steps = 600\n')
  lines = [{'step': 500, 'test/return': 3.0}]
  (logdir / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines))
  (logdir / 'checkpoints' / 'ckpt-500.index').write_text('')
  assert not sweep.run_finished(logdir)  # short of Trainer.steps
  (logdir / 'checkpoints' / 'ckpt-600.index').write_text('')
  assert not sweep.run_finished(logdir)  # the final evaluation is missing
  with open(logdir / 'metrics.jsonl', 'a') as f:
    f.write(json.dumps({'step': 600, 'train/return': 1.0}) + '\n')
    f.write(json.dumps({'step': 600, 'test/return': 5.0}) + '\n{"step": 8')  # cut short
  assert sweep.run_finished(logdir)
  assert not sweep.finished(trial)  # not asked by a sweep
  sweep.record(trial)
  assert sweep.finished(trial)
  assert not sweep.finished(trial._replace(bindings=trial.bindings + ('Trainer.steps = 700',)))
  state = sweep.TrialState(trial, max_retries=3)
  state.refresh()
  assert state.line() == ('toy2d_x_y · mummi toy2d_learn · seed0 · step 600/600 · test 5.0 · '
                          'pending')


def test_attempts_end_done_retrying_or_failed(tmp_path):
  trial = sweep.expand(sweep.GRIDS['smoke'], tmp_path)[1]
  state = sweep.TrialState(trial, max_retries=1)
  state.submitted()
  assert state.conclude(-9) == 'retrying' and 'killed by signal 9' in state.line()
  state.submitted()
  assert state.state == 'retrying'
  trial.logdir.mkdir(parents=True)
  (trial.logdir / 'sweep.log').write_text('# header\n')
  state.refresh()
  assert state.line().endswith('running (attempt 2 of 2; attempt 1 killed by signal 9)')
  assert state.conclude('NodeDiedError') == 'failed' and 'NodeDiedError in 2 attempts' in state.note
  state = sweep.TrialState(trial, max_retries=3)
  state.submitted()
  (trial.logdir / 'sweep.log').write_text('error: bad gin configuration: No configurable X\n')
  assert state.conclude(2) == 'failed'  # the trainer's usage error is not retried
  assert state.note == 'exit 2: error: bad gin configuration: No configurable X'


def test_progress_lines_show_new_states_at_once_and_new_steps_at_most_every_so_often(tmp_path):
  trial = sweep.expand(sweep.GRIDS['smoke'], tmp_path)[0]
  state = sweep.TrialState(trial, max_retries=3)
  assert state.changed(60, now=0.0).endswith('pending')
  assert state.changed(60, now=1.0) is None  # nothing new
  trial.logdir.mkdir(parents=True)
  (trial.logdir / 'metrics.jsonl').write_text('{"step": 100}\n')
  state.refresh()
  assert state.changed(60, now=2.0) is None  # only steps, too soon
  assert 'step 100/?' in state.changed(60, now=61.0)
  state.state = 'running'
  assert state.changed(60, now=62.0).endswith('running')


def _alive(pid):
  try:
    return pathlib.Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
  except OSError:
    return False


def test_a_commands_process_dies_with_its_parent(tmp_path):
  """What keeps a dead Ray worker's training process from holding its logdir."""
  log = tmp_path / 'log'
  child = 'import os, time; print(os.getpid(), flush=True); time.sleep(60)'
  parent = subprocess.Popen([
      sys.executable, '-c',
      f'from mummi_tf import sweep; sweep.run_command(["-c", {child!r}], {str(log)!r})'
  ], cwd=ROOT)
  try:
    deadline = time.monotonic() + 60
    while not (log.exists() and len(log.read_text().splitlines()) >= 2):
      assert time.monotonic() < deadline and parent.poll() is None
      time.sleep(0.1)
    header, pid = log.read_text().splitlines()[:2]
    assert header.startswith('# ') and header.endswith('python -c ' + repr(child).replace('"', "'"))
    assert _alive(int(pid))
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(int(pid)):
      assert time.monotonic() < deadline, 'the command outlived its parent'
      time.sleep(0.1)
  finally:
    parent.kill()


def test_run_command_returns_the_exit_status(tmp_path):
  assert sweep.run_command(['-c', 'import sys; print("hi"); sys.exit(3)'], tmp_path / 'a') == 3
  assert (tmp_path / 'a').read_text().splitlines()[1] == 'hi'
  assert sweep.run_command(['-c', 'import os; os.kill(os.getpid(), 9)'], tmp_path / 'a') == -9


class FakeRay:
  """The Ray calls the driver makes; each task's outcome is scripted: ``outcome(args, log)``
  returns an exit status or raises."""
  class exceptions:
    class RayError(Exception):
      pass

  def __init__(self, outcome, cpus=1):
    self.outcome, self.calls, self.cpus = outcome, [], cpus
    self.most = 0  # the most tasks in flight at once

  def cluster_resources(self):
    return {'CPU': float(self.cpus)}

  def remote(self, function):
    assert function is sweep.run_command
    return FakeTask(self)

  def wait(self, refs, num_returns, timeout):
    self.most = max(self.most, len(refs))
    return list(refs), []

  def get(self, ref):
    return self.outcome(*self.calls[ref])


class FakeTask:
  def __init__(self, ray):
    self.ray = ray

  def options(self, **resources):
    assert resources == {'num_cpus': 1.0, 'num_gpus': 0.0, 'max_retries': 0}
    return self

  def remote(self, args, log, env):
    with open(log, 'a') as f:
      f.write('# header\n')
    self.ray.calls.append((args, pathlib.Path(log)))
    return len(self.ray.calls) - 1


class WorkerCrashedError(FakeRay.exceptions.RayError):
  pass


def _finish_run(logdir):
  (logdir / 'checkpoints').mkdir(exist_ok=True)
  (logdir / 'operative_config.gin').write_text('Trainer.steps = 600\n')
  (logdir / 'checkpoints' / 'ckpt-600.index').write_text('')
  (logdir / 'metrics.jsonl').write_text('{"step": 600, "test/return": 7.0}\n')


def test_the_driver_retries_fails_and_evaluates(tool, tmp_path, capsys):
  """Without Ray: a crashed Ray worker is retried, a trial that keeps dying fails after its
  retries, a finished one is evaluated, and the lines say so."""
  first, second = sweep.expand(sweep.GRIDS['smoke'], tmp_path)

  def outcome(args, log):
    if '--eval_logdir' in args:
      tool.eval_file(log.parent).write_text(json.dumps({'checkpoint': 600, 'episodes': 2}))
      return 0
    if log.parent == first.logdir:
      if len(_headers(first.logdir)) == 1:
        raise WorkerCrashedError()
      _finish_run(first.logdir)
      return 0
    return -9

  ray = FakeRay(outcome)
  args = tool.parse_args(['--grid', 'smoke', '--out', str(tmp_path), '--max_retries', '2'])
  states = [sweep.TrialState(t, args.max_retries) for t in (first, second)]
  tool.Driver(ray, states, args, episodes=2).run()
  out = capsys.readouterr().out
  assert [s.state for s in states] == ['done', 'failed']
  assert 'retrying (attempt 1 WorkerCrashedError)' in out
  assert 'step 600/600 · test 7.0 · done (evaluated)' in out
  assert f'failed (killed by signal 9 in 3 attempts; see {second.logdir / "sweep.log"})' in out
  assert len(_headers(first.logdir)) == 3 and len(_headers(second.logdir)) == 3
  assert [a[0][-1] for a in ray.calls if '--eval_logdir' in a[0]] == ['2']
  # One trial at a time on this 1-CPU Ray: the finished trial's evaluation and the crashed
  # worker's retry go before the trial that waits (Ray would run them after it).
  order = [('eval' if '--eval_logdir' in a else 'train', log.parent) for a, log in ray.calls]
  assert order[:3] == [('train', first.logdir), ('train', first.logdir), ('eval', first.logdir)]
  assert ray.most == 1


def test_the_driver_fills_the_cluster_and_no_more(tool, tmp_path):
  """Four trials on a 2-CPU Ray at 1 CPU each: two at a time, each evaluated when it ends."""
  trials = sweep.expand(sweep.GRIDS['smoke']._replace(seeds=(0, 1)), tmp_path)

  def outcome(args, log):
    if '--eval_logdir' in args:
      tool.eval_file(log.parent).write_text(json.dumps({'checkpoint': 600, 'episodes': 2}))
    else:
      _finish_run(log.parent)
    return 0

  ray = FakeRay(outcome, cpus=2)
  args = tool.parse_args(['--grid', 'smoke', '--out', str(tmp_path)])
  states = [sweep.TrialState(t, args.max_retries) for t in trials]
  tool.Driver(ray, states, args, episodes=2).run()
  assert [s.state for s in states] == ['done'] * len(trials) and ray.most == 2
  kinds = ['eval' if '--eval_logdir' in a else 'train' for a, _ in ray.calls]
  assert kinds.count('eval') == len(trials) and kinds[:2] == ['train', 'train']


# ------------------------------------------------------------------------ end to end


def _sweep(out, *extra, ignore_sigint=False):
  ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
  return subprocess.Popen([
      sys.executable, *TOOL, '--grid', 'smoke', '--out',
      str(out), '--episodes', '1', '--progress_every', '5', *extra
  ], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=ignore)


def _kill_once_checkpointed(logdir, proc, timeout=180):
  """SIGKILL to the trial's training process (its pid is in logdir/.lock) once it has saved
  a checkpoint and before it has finished."""
  deadline = time.monotonic() + timeout
  while sweep.newest_checkpoint(logdir) is None:
    assert time.monotonic() < deadline and proc.poll() is None, 'no checkpoint in time'
    time.sleep(0.05)
  assert not sweep.run_finished(logdir)
  pid = int((logdir / '.lock').read_text().split()[1])
  os.kill(pid, signal.SIGKILL)


def _stop(proc):
  if proc.poll() is None:
    proc.send_signal(signal.SIGINT)  # the sweep shuts its Ray down
    try:
      proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()


def _headers(logdir):
  return [l for l in (logdir / 'sweep.log').read_text().splitlines() if l.startswith('# ')]


@pytest.mark.parametrize('stop', [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_sweep_stops_its_running_trial_with_a_checkpoint(tmp_path, stop):
  """Ctrl-C, or ``kill`` (SIGTERM), stops each running trial with SIGTERM before Ray goes
  down: the trial saves its updates and says so in its log (issue 34, item 10). The sweep starts
  with SIGINT ignored, as a ``nohup … &`` job does: ``kill -INT`` must stop it all the same."""
  pytest.importorskip('ray')
  out = tmp_path / 'smoke'
  first = sweep.expand(sweep.GRIDS['smoke'], out)[0].logdir
  proc = _sweep(out, '--num_cpus', '1', ignore_sigint=True)  # one trial at a time
  try:
    deadline = time.monotonic() + 180
    while sweep.newest_checkpoint(first) is None:
      assert time.monotonic() < deadline and proc.poll() is None, 'no checkpoint in time'
      time.sleep(0.05)
    proc.send_signal(stop)
    stdout, stderr = proc.communicate(timeout=180)
  finally:
    _stop(proc)
  assert proc.returncode == 130, stdout + stderr[-3000:]
  assert 'stopping 1 running trial(s)' in stderr
  log = (first / 'sweep.log').read_text()
  assert 'stopped by SIGTERM at step' in log and 'rerun the same command to resume' in log, log[
      -2000:]
  stopped = int(log.split('stopped by SIGTERM at step ')[1].split(':')[0])
  assert sweep.newest_checkpoint(first) == stopped  # the updates since the last periodic save


def test_smoke_sweep_survives_a_killed_trial_and_a_rerun_skips_it(tmp_path):
  pytest.importorskip('ray')
  out = tmp_path / 'smoke'
  killed, other = [t.logdir for t in sweep.expand(sweep.GRIDS['smoke'], out)]
  proc = _sweep(out)
  try:
    _kill_once_checkpointed(killed, proc)
    stdout, stderr = proc.communicate(timeout=300)
  finally:
    _stop(proc)
  assert proc.returncode == 0, stdout + stderr[-3000:]
  assert 'mummi toy2d_learn · seed0 · step' in stdout
  assert 'retrying (attempt 1 killed by signal 9)' in stdout
  assert 'running (attempt 2 of 4; attempt 1 killed by signal 9)' in stdout
  for logdir in (killed, other):
    assert sweep.run_finished(logdir), logdir
  trains = [h for h in _headers(killed) if 'mummi_tf.cli.train' in h]
  assert len(trains) == 2 and len([h for h in _headers(other) if 'mummi_tf.cli.train' in h]) == 1
  assert 'resumed at step' in (killed / 'sweep.log').read_text()
  table = (out / 'table.md').read_text()
  assert '| toy2d_x_y | none |' in table and 'mummi (toy2d_learn)' in table
  assert 'dreamer (toy2d_learn)' in table and (out / 'curves.png').stat().st_size > 0
  assert (out / 'table.csv').exists()
  before = {d: _headers(d) for d in (killed, other)}
  rerun = subprocess.run([sys.executable, *TOOL, '--out', str(out)], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=120)
  assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
  assert rerun.stdout.count('· done (finished before)') == 2, rerun.stdout
  assert {d: _headers(d) for d in (killed, other)} == before  # nothing trained or evaluated
