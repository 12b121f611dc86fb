"""End-to-end runs of the main job on a real Natural MuJoCo task, all three modalities."""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest

from mummi_tf.run import replay as replay_lib
from mummi_tf.cli import train

# A run that passes through prefill, updates, evaluation at every missing rate and a
# checkpoint in 480 env steps (episodes of 120 env steps = 60 agent steps).
TINY = [
    'mummi_tf.envs.make.time_limit = 120',
    'Trainer.steps = 480',
    'Trainer.prefill = 240',
    'Trainer.train_every = 120',
    'Trainer.train_steps = 2',
    'Trainer.batch_size = 2',
    'Trainer.batch_length = 8',
    'Trainer.eval_every = 240',
    'Trainer.eval_episodes = 1',
    'Trainer.log_every = 120',
    'Trainer.save_every = 120',
    'ActorCritic.horizon = 3',
    'ActorCritic.mpc_horizon = 3',
    'Agent.jit_policy = False',  # XLA's compile would dominate these runs (test_replicas: on)
    'WorldModel.deter = 16',
    'WorldModel.stoch = 4',
    'WorldModel.fused = 16',
    'WorldModel.hidden = 16',
    'WorldModel.embed = 32',
    'WorldModel.expert_hidden = 32',
    'WorldModel.reward_units = 16',
    'Actor.units = 16',
    'Value.units = 16',
]
METHODS = ('mummi', 'mummi_b', 'cvrl', 'dreamer', 'mssm_e')
RUN_SECONDS = {}  # logdir -> wall time of the module's training run (train.main)


def args(logdir, method='mummi', extra=(), task='walker_walk'):
  result = [
      '--task', task, '--logdir',
      str(logdir), '--gin_file', method, '--gin_file', 'quick', '--seed', '3'
  ]
  for binding in TINY + list(extra):
    result += ['--gin_binding', binding]
  return result


def read_metrics(logdir):
  return [json.loads(line) for line in (logdir / 'metrics.jsonl').read_text().splitlines()]


def merged(lines):
  result = {}
  for line in lines:
    result.update(line)
  return result


@pytest.fixture(scope='module')
def mummi_run(tmp_path_factory):
  logdir = tmp_path_factory.mktemp('mummi')
  start = time.perf_counter()
  assert train.main(args(logdir)) == 0
  RUN_SECONDS[logdir] = time.perf_counter() - start
  gin.clear_config()
  return logdir


def check_run(logdir):
  episodes = replay_lib.episode_files(logdir / 'episodes')
  assert len(episodes) == 4  # 480 env steps / 120 per episode
  first = replay_lib.load_episode(episodes[0])
  assert first['rgb'].shape == (61, 64, 64, 3) and first['rgb'].dtype == np.uint8
  assert first['depth'].shape == (61, 64, 64, 1)
  assert first['touch'].shape == (61, 2)
  assert first['action'].shape == (61, 6)
  metrics = merged(read_metrics(logdir))
  for name in ('train/return', 'train/length', 'test/return', 'test/length', 'model_loss',
               'actor_loss', 'value_loss', 'fps', 'test/return_none', 'test/return_medium',
               'test/return_high', 'train/missing/rgb', 'test/missing_high/depth',
               'test/return_std', 'test/return_std_high', 'test/action_saturated_none',
               'test/action_flips_high'):
    assert name in metrics, name
  assert metrics['step'] == 480
  assert metrics['test/length'] == 60 and metrics['train/length'] == 60  # agent steps
  assert 0.2 < metrics['train/missing/rgb'] < 0.55  # 37.5 % target
  assert metrics['test/missing_high/touch'] > 0.6
  assert 0 <= metrics['test/action_flips_high'] <= 1
  assert (logdir / 'checkpoints' / 'checkpoint').exists()
  run = json.loads((logdir / 'run.json').read_text())
  assert run['task'] == 'walker_walk' and run['obs_spec']['rgb'] == [[64, 64, 3], 'uint8']
  assert run['gin_files'][1] == 'quick'  # what mummi_tf/cli/plot.py labels the run with
  assert 'WorldModel.fused = 16' in (logdir / 'config.gin').read_text()
  assert list((logdir / 'videos').glob('test_video_none-*.mp4'))
  for level in ('none', 'medium', 'high'):
    assert len(replay_lib.episode_files(logdir / 'eval_episodes' / level)) >= 1
  return metrics


def test_mummi_end_to_end(mummi_run):
  metrics = check_run(mummi_run)
  assert metrics['infonce_acc/rgb'] >= 0  # MuMMI's own diagnostics reach the logs
  assert 'precision_share/depth' in metrics


def test_each_training_line_splits_its_wall_time(mummi_run):
  """Issue 16: time/* (seconds per logged window) partition the window's wall time, the
  measured sections cover most of it, and cpu_idle/<core> is each core's idle fraction."""
  from mummi_tf.run import timing
  lines = [l for l in read_metrics(mummi_run) if 'fps' in l]
  assert [l['step'] for l in lines] == [120, 240, 360, 480]
  keys = [f'time/{name}' for name in timing.SECTIONS + ('other', 'wall')]
  for line in lines:
    assert all(line.get(k, -1) >= 0 for k in keys), line
    measured = sum(line[f'time/{name}'] for name in timing.SECTIONS)
    assert measured + line['time/other'] == pytest.approx(line['time/wall'], abs=1e-3)
    assert measured >= 0.8 * line['time/wall'], line  # "other" is the small rest
    assert line['time/env'] > 0 and line['time/policy'] > 0, line
    idle = [v for k, v in line.items() if k.startswith('cpu_idle/')]
    assert all(0 <= v <= 1 for v in idle) and (idle or not os.path.exists('/proc/stat')), line
  assert all(l['time/update'] > 0 and l['time/replay'] > 0 for l in lines[2:])  # trained
  assert lines[1]['time/eval'] == 0 and lines[2]['time/eval'] > 0  # evaluated at 240
  assert sum(l['time/wall'] for l in lines) <= RUN_SECONDS[mummi_run]


@pytest.mark.parametrize('method', [m for m in METHODS if m != 'mummi'])
def test_every_method_end_to_end(tmp_path, method):
  assert train.main(args(tmp_path, method)) == 0
  check_run(tmp_path)
  run = json.loads((tmp_path / 'run.json').read_text())
  assert run['method'] == method
  head = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
                        cwd=train.REPO)
  assert head.returncode or run['commit'].split('-')[0] == head.stdout.strip()[:12]  # the tables'
  # Upstream's open-loop video (agent/openl) per image modality, for the decoder methods.
  videos = {p.name.split('-')[0] for p in (tmp_path / 'videos').glob('openl_*.mp4')}
  assert videos == ({'openl_rgb', 'openl_depth'} if method in ('dreamer', 'mssm_e') else set())


def test_eval_only_and_resume_refusal(mummi_run, capsys):
  before = len(replay_lib.episode_files(mummi_run / 'episodes'))
  metrics = (mummi_run / 'metrics.jsonl').read_text()
  own = mummi_run / 'eval_only'
  lines = len(read_metrics(own)) if (own / 'metrics.jsonl').exists() else 0
  kept = len(list((own / 'eval_episodes' / 'high').glob('*.npz')))
  assert train.main(args(mummi_run) + ['--eval_only', '--eval_episodes', '2']) == 0
  # Its own metrics and episodes: the training's curves and resume are untouched (issue 36).
  assert (mummi_run / 'metrics.jsonl').read_text() == metrics
  assert len(read_metrics(own)) == lines + 1 and 'test/return_none' in read_metrics(own)[-1]
  assert read_metrics(own)[-1]['step'] == 480
  assert len(list((own / 'eval_episodes' / 'high').glob('*.npz'))) == kept + 2
  out = capsys.readouterr().out
  for level in ('none', 'medium', 'high'):
    assert f'test/return_{level}:' in out
  assert out.count('(2 episodes)') == 6  # each level as it finishes, then the table
  for level in ('none', 'medium', 'high'):
    assert f'  missing {level}: ' in out
  assert '5 eval env workers per missing level' in out and 'env worker ·' not in out
  assert len(replay_lib.episode_files(mummi_run / 'episodes')) == before  # no training
  gin.clear_config()
  assert train.main(args(mummi_run, 'cvrl')) == 2
  assert "made with method 'mummi', not 'cvrl'" in capsys.readouterr().err


def test_logdir_alone_evaluates_and_resumes_with_the_runs_own_config(mummi_run, tmp_path, capsys):
  """`--logdir L` needs no --task/--gin_file: run.json and config.gin supply them."""
  logdir = tmp_path / 'copy'
  subprocess.run(['cp', '-r', str(mummi_run), str(logdir)], check=True)
  assert train.main(['--logdir', str(logdir), '--eval_only', '--eval_episodes', '1']) == 0
  assert 'test/return_high:' in capsys.readouterr().out
  gin.clear_config()
  # 660 is no whole number of rounds after 480: the last round stops at --steps.
  assert train.main(['--logdir', str(logdir), '--steps', '660']) == 0
  assert max(l['step'] for l in read_metrics(logdir)) == 660
  run = json.loads((logdir / 'run.json').read_text())
  assert (run['task'], run['seed'], run['gin_files']) == ('walker_walk', 3, ['mummi', 'quick'])


def test_same_seed_same_first_episodes_and_losses(mummi_run, tmp_path):
  """The README's reproducibility claim as stated: identical prefill episodes (actions,
  observations, missing masks) and the first round's losses equal to float rounding."""
  assert train.main(args(tmp_path)) == 0
  a = replay_lib.load_episode(replay_lib.episode_files(mummi_run / 'episodes')[0])
  b = replay_lib.load_episode(replay_lib.episode_files(tmp_path / 'episodes')[0])
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  first = lambda d: next(l for l in read_metrics(d) if 'model_loss' in l)['model_loss']
  assert first(mummi_run) == pytest.approx(first(tmp_path), rel=1e-5)


@pytest.mark.parametrize('bad, message', [
    (['--task', 'walker_fly'], "unknown task 'walker_fly'; valid: walker_stand"),
    (['--gin_file', 'nope'], "unknown gin file 'nope'; valid: "),
    (['--gin_binding', 'Trainer.nonsense = 3'], 'bad gin configuration'),
    (['--gin_binding', "WorldModel.method = 'vae'"], "unknown method 'vae'; valid: mummi"),
    (['--eval_episodes', '0'], '--eval_episodes must be >= 1, got 0'),
    (['--steps', '-5'], '--steps must be a finite number of env steps >= 1, got -5.0'),
    (['--steps', 'nan'], '--steps must be a finite number of env steps >= 1, got nan'),
    (['--steps', 'inf'], '--steps must be a finite number of env steps >= 1, got inf'),
    (['--gin_binding', 'mummi_tf.envs.make.missing = 1.5'
     ], 'bad environment option: missing rate 1.5 is outside [0, 1)'),
    (['--gin_binding', "mummi_tf.envs.make.modalities = ('rgb', 'sonar')"
     ], "unknown modalities ['sonar'] for walker_walk; valid: rgb, depth, touch, state"),
    (['--gin_binding', "mummi_tf.evaluation.conditions.levels = ('none', 'extreme')"
     ], "unknown missing level 'extreme'; valid: none, train, medium, high"),
    (['--gin_binding', 'mummi_tf.envs.make.action_repeat = 0'
     ], 'action_repeat must be an integer >= 1, got 0'),
    (['--gin_binding', 'Evaluator.parallel = 0'], 'Evaluator.parallel must be >= 1, got 0'),
    (['--eval_only'], 'does not exist: give the logdir of a training run'),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, bad, message):
  logdir = tmp_path / 'run'
  assert train.main(args(logdir) + bad) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and len(err.splitlines()) == 1
  assert not logdir.exists()


@pytest.mark.parametrize('case', ['method', 'no_checkpoint', 'busy'])
def test_bad_input_under_the_real_entry_point_is_one_line_exit_2(tmp_path, case):
  """`python -m mummi_tf.cli.train` (the command's module is __main__): a usage error raised in the
  trainer is the command's own, one line and exit 2, and the logdir gains nothing."""
  import fcntl
  logdir = tmp_path / 'run'
  extra, held = [], None
  if case == 'method':
    extra, message = ['--gin_binding', "WorldModel.method = 'foo'"], "unknown method 'foo'"
  elif case == 'no_checkpoint':  # e.g. a run stopped in its prefill
    logdir.mkdir()
    (logdir / 'run.json').write_text(json.dumps({'task': 'walker_walk', 'method': 'mummi'}))
    extra, message = ['--eval_only'], 'no checkpoint in'
  else:
    logdir.mkdir()
    held = open(logdir / '.lock', 'a+')
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    message = 'is in use by another run'
  before = sorted(p.name for p in logdir.iterdir()) if logdir.exists() else None
  command = [sys.executable, '-m', 'mummi_tf.cli.train'] + args(logdir) + extra
  result = subprocess.run(command, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'),
                          capture_output=True, text=True, timeout=300)
  if held:
    held.close()
  err = result.stderr.strip()
  assert result.returncode == 2 and message in err and len(err.splitlines()) == 1, err[-2000:]
  assert (sorted(p.name for p in logdir.iterdir()) if logdir.exists() else None) == before


def test_help_lists_the_tasks_and_the_gin_files():
  result = subprocess.run([sys.executable, '-m', 'mummi_tf.cli.train', '--help'],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  text = ' '.join(result.stdout.split())
  assert 'walker_stand, walker_walk, walker_run, finger_spin, cup_catch, table_wiping' in text
  assert 'mummi, mummi_b, plain, quick, small' in text


def test_a_logdir_that_is_a_file_or_unwritable_is_refused(tmp_path, capsys):
  afile = tmp_path / 'notes.txt'
  afile.write_text('keep me')
  assert train.main(args(afile)) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'is a file, not a folder' in err
  assert afile.read_text() == 'keep me'
  assert train.main(args('/proc/mummi_tf_logdir')) == 2  # read-only even for root
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'is not writable' in err


def test_a_damaged_or_deleted_run_json_is_refused_or_repaired_by_the_flags(
    mummi_run, tmp_path, capsys):
  """run.json damaged: one line saying how to repair it, and the flags of the run's start
  win; deleted: a run that config.gin still shows is not resumed as seed 0 without gin files
  (issue 34, item 6)."""
  logdir = tmp_path / 'copy'
  subprocess.run(['cp', '-r', str(mummi_run), str(logdir)], check=True)
  (logdir / 'run.json').write_text('{"task": "walker_wa')
  assert train.main(['--logdir', str(logdir), '--eval_only', '--eval_episodes', '1']) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'is damaged (not JSON)' in err, err
  gin.clear_config()
  flags = ['--seed', '3', '--eval_only', '--eval_episodes', '1']
  assert train.main(args(logdir) + flags) == 0
  (logdir / 'run.json').unlink()
  gin.clear_config()
  assert train.main(['--logdir', str(logdir), '--steps', '600']) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'holds a run (config.gin) but no run.json' in err, err
  assert not (logdir / 'run.json').exists()


def test_unreadable_episodes_are_moved_aside_and_not_counted(mummi_run, tmp_path, caplog):
  """A truncated or empty episode file adds no steps on resume; it goes to corrupt/."""
  logdir = tmp_path / 'copy'
  subprocess.run(['cp', '-r', str(mummi_run), str(logdir)], check=True)
  good = replay_lib.episode_files(logdir / 'episodes')[-1]
  truncated = good.with_name('29991231T235959-' + 'f' * 32 + '-61.npz')
  truncated.write_bytes(good.read_bytes()[:1000])
  empty = good.with_name('29991231T235959-' + 'e' * 32 + '-61.npz')
  empty.write_bytes(b'')
  assert train.main(args(logdir, extra=['Trainer.steps = 600'])) == 0
  assert sorted(p.name for p in (logdir / 'episodes' / 'corrupt').iterdir()) == sorted([
      truncated.name, empty.name
  ])
  assert caplog.text.count('Moved unreadable episode file') == 2
  # 480 real env steps before, so the run went on to 600 (a name-based count said 720).
  assert replay_lib.count_steps(logdir / 'episodes') * 2 == 600
  assert merged(read_metrics(logdir))['step'] == 600


def test_a_run_whose_only_episode_is_corrupt_prefills_again(tmp_path):
  assert train.main(args(tmp_path, extra=['Trainer.steps = 240'])) == 0
  for path in replay_lib.episode_files(tmp_path / 'episodes'):
    path.write_bytes(path.read_bytes()[:500])
  gin.clear_config()
  assert train.main(args(tmp_path, extra=['Trainer.steps = 240'])) == 0
  assert len(list((tmp_path / 'episodes' / 'corrupt').iterdir())) == 2
  assert replay_lib.count_steps(tmp_path / 'episodes') * 2 == 240


def test_resume_after_sigkill(tmp_path):
  """kill -9 mid-run, then the same command finishes the run; nothing is lost."""
  command = [sys.executable, '-m', 'mummi_tf.cli.train'] + args(tmp_path,
                                                                extra=['Trainer.steps = 720'])
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
  deadline = time.time() + 240
  while time.time() < deadline:
    if len(replay_lib.episode_files(
        tmp_path / 'episodes')) >= 3 and (tmp_path / 'checkpoints' / 'checkpoint').exists():
      break
    time.sleep(0.2)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  kept = replay_lib.episode_files(tmp_path / 'episodes')
  assert len(kept) >= 3
  assert all(replay_lib.load_episode(p) is not None for p in kept)
  result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  final = replay_lib.episode_files(tmp_path / 'episodes')
  assert set(kept) <= set(final)  # no completed episode lost
  assert replay_lib.count_steps(tmp_path / 'episodes') * 2 == 720
  assert merged(read_metrics(tmp_path))['step'] == 720


def test_sigterm_during_an_evaluation_stops_it_at_once_and_the_resume_redoes_it(tmp_path):
  """Slurm kills 30 s after SIGTERM: a run in an evaluation stops at its next agent step with a
  checkpoint instead of finishing the evaluation (issue 34, item 9); the resume evaluates that
  step once, whole."""
  slow = [
      'Trainer.steps = 360', 'Trainer.eval_every = 360', 'Trainer.eval_episodes = 30',
      'Evaluator.parallel = 1'
  ]  # 90 evaluation episodes one at a time: far longer than the stop may take
  command = [sys.executable, '-m', 'mummi_tf.cli.train'] + args(tmp_path, extra=slow)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True)
  deadline = time.time() + 240
  while not any(l.get('step') == 360 and 'model_loss' in l for l in _metrics_so_far(tmp_path)):
    assert time.time() < deadline and proc.poll() is None, 'no round at 360 in time'
    time.sleep(0.05)
  time.sleep(2)  # into the evaluation
  signalled = time.time()
  os.killpg(proc.pid, signal.SIGTERM)
  stdout, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 143, stderr[-2000:]
  # Within Slurm's 30 s grace (27 s seen with the suite beside a training run on 2 cores).
  assert time.time() - signalled < 30, time.time() - signalled
  assert 'stopped by SIGTERM at step 360' in stdout + stderr
  assert not any('test/return' in l for l in _metrics_so_far(tmp_path))  # cut, not logged
  result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  tests = [l for l in read_metrics(tmp_path) if 'test/return_none' in l]
  assert [l['step'] for l in tests] == [360]
  assert len(list((tmp_path / 'eval_episodes' / 'none').glob('*.npz'))) == 30


def test_sigterm_to_the_process_group_saves_the_updates_and_exits_143(tmp_path):
  """Slurm's preemption (SIGTERM to every process of the job): the run stops between two
  updates, saves them all in a checkpoint, closes its env workers (which ignore the signal)
  and exits 143; the next command resumes from that checkpoint."""
  import tensorflow as tf
  never = ['Trainer.steps = 100000', 'Trainer.save_every = 100000', 'Trainer.eval_every = 100000']
  command = [sys.executable, '-m', 'mummi_tf.cli.train'] + args(tmp_path, extra=never)
  proc = subprocess.Popen(command, env=dict(os.environ,
                                            TF_CPP_MIN_LOG_LEVEL='3'), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)
  deadline = time.time() + 240
  while not any(line.get('time/update', 0) > 0 for line in _metrics_so_far(tmp_path)):
    assert time.time() < deadline and proc.poll() is None, 'no update in time'
    time.sleep(0.2)
  os.killpg(proc.pid, signal.SIGTERM)
  stdout, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 143, stderr[-2000:]
  assert 'died' not in stderr  # the workers were closed, not killed by the signal
  with pytest.raises(ProcessLookupError):
    os.killpg(proc.pid, 0)  # no worker outlives the run
  said = [l for l in (stdout + stderr).splitlines() if l.startswith('stopped by SIGTERM')]
  assert len(said) == 1, stdout + stderr[-2000:]
  step = replay_lib.count_steps(tmp_path / 'episodes') * 2
  prefix = tf.train.latest_checkpoint(tmp_path / 'checkpoints')
  assert said[0].startswith(f'stopped by SIGTERM at step {step}: saved {prefix} (')
  updates = tf.train.load_checkpoint(prefix).get_tensor('updates/.ATTRIBUTES/VARIABLE_VALUE')
  assert f'({updates} updates)' in said[0] and updates >= 2  # a round's train_steps at least


def _metrics_so_far(logdir):
  try:
    return read_metrics(logdir)
  except (OSError, ValueError):  # not written yet, or a line being written
    return []


def test_table_wiping_short_run_writes_both_cameras(tmp_path):
  if importlib.util.find_spec('robosuite') is None:  # Never import it here (TF process).
    pytest.skip('Table Wiping needs tools/install_robosuite.sh')
  extra = [
      'mummi_tf.envs.make.time_limit = 40', 'Trainer.steps = 160', 'Trainer.prefill = 80',
      'Trainer.train_every = 40', 'Trainer.eval_every = 160', 'Trainer.log_every = 40'
  ]
  assert train.main(args(tmp_path, task='table_wiping', extra=extra)) == 0
  episodes = replay_lib.episode_files(tmp_path / 'episodes')
  assert 0 < replay_lib.count_steps(tmp_path / 'episodes') * 2 <= 160  # the last may be open
  episode = max((replay_lib.load_episode(p) for p in episodes), key=lambda e: len(e['reward']))
  for camera in ('workspace', 'eye_in_hand'):
    assert episode[camera].shape[1:] == (64, 64, 3) and episode[camera].dtype == np.uint8
    present = episode[f'{camera}_flag'] > 0
    assert episode[camera][present].std() > 5  # real pictures where present
  assert 'WorldModel.fused = 16' in (tmp_path / 'config.gin').read_text()
  metrics = merged(read_metrics(tmp_path))
  for name in ('test/return_none', 'test/return_medium', 'test/return_robot_camera_only',
               'test/missing_robot_camera_only/workspace'):
    assert name in metrics, name
  assert metrics['test/missing_robot_camera_only/workspace'] == 1.0
  assert metrics['test/missing_robot_camera_only/eye_in_hand'] == 0.0


def test_training_process_never_loads_simulators():
  """dm_control or robosuite beside TF crash the process at exit: only workers load them."""
  code = '''
import sys
from mummi_tf.cli import train
for task, method in (('walker_walk', 'mummi'), ('table_wiping', 'mssm_e')):
  train.configure(train.parse_args(['--task', task, '--logdir', '/nonexistent',
                                    '--gin_file', method, '--gin_file', 'quick']))
import tensorflow
loaded = sorted({m.split('.')[0] for m in sys.modules} & {'dm_control', 'robosuite'})
assert not loaded, loaded
'''
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]


def test_evaluate_tool_writes_table(mummi_run, tmp_path, capsys):
  from mummi_tf.cli import evaluate
  out = tmp_path / 'table'
  assert evaluate.main(['--logdirs', str(mummi_run), '--episodes', '2', '--out', str(out)]) == 0
  markdown = out.with_suffix('.md').read_text()
  assert '| task | missing data | mummi |' in markdown
  for level in ('none', 'medium', 'high'):
    assert f'| walker_walk | {level} | ' in markdown
  rows = out.with_suffix('.csv').read_text().splitlines()
  assert rows[0] == 'task,method,condition,mean,std,episodes'
  assert len(rows) == 4 and all(r.endswith(',2') for r in rows[1:])
  assert evaluate.main(['--logdirs', str(tmp_path), '--out', str(out)]) == 2
  assert 'not a training logdir (no run.json)' in capsys.readouterr().err
  assert evaluate.main(['--logdirs', str(tmp_path / 'typo'), '--out', str(out)]) == 2
  assert capsys.readouterr().err == f'error: no such logdir: {tmp_path / "typo"}\n'


def test_toy2d_world_is_usable_by_the_trainer(tmp_path):
  assert train.main(args(tmp_path, task='toy2d_position_camera')) == 0
  episode = replay_lib.load_episode(replay_lib.episode_files(tmp_path / 'episodes')[0])
  assert episode['position'].shape == (61, 2) and episode['camera'].dtype == np.uint8
  metrics = merged(read_metrics(tmp_path))
  assert {'precision_share/position', 'precision_share/camera', 'test/return_high'} <= set(metrics)


def test_diagnose_tool_reports_behaviour_numbers(mummi_run, capsys):
  from mummi_tf.cli import diagnose
  assert diagnose.main(['--logdir', str(mummi_run), '--batch', '3', '--length', '8']) == 0
  report = json.loads(capsys.readouterr().out)
  assert report['checkpoint_step'] == 480
  for key in ('actor_saturated', 'actor_mode_spread', 'value_imag_last', 'drift_z_last',
              'reward_mse_openloop', 'reward_mse_k1', 'reward_var', 'mpc_shift'):
    assert np.isfinite(report[key]), key
  assert 'reward_mse_k5' not in report  # 8-step sequences: 3 imagined steps after 5
  assert 0 <= report['actor_saturated'] <= 1
  assert diagnose.main(['--logdir', str(mummi_run / 'nope')]) == 2
  capsys.readouterr()
  assert diagnose.main(['--logdir', str(mummi_run), '--checkpoint', str(mummi_run / 'nope')]) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith('diagnose: error: ') and len(error.splitlines()) == 1, error


def test_restored_agent_holds_the_newest_checkpoint(mummi_run):
  """`export.restored_agent` (export, diagnose and the probes): the run's agent with the
  newest checkpoint's values, or an earlier checkpoint's when given one."""
  import tensorflow as tf
  from mummi_tf.run import checkpoints
  from mummi_tf.run import export
  agent, run, ckpt, step = export.restored_agent(mummi_run)
  assert step == 480 and run == json.loads((mummi_run / 'run.json').read_text())
  saved = dict(tf.train.list_variables(ckpt))
  key = next(
      k for k in saved if k.startswith('agent/') and 'OPTIMIZER' not in k and len(saved[k]) == 2)
  value = tf.train.load_variable(ckpt, key)
  assert any(np.array_equal(v.numpy(), value) for v in agent.variables if v.shape == value.shape)
  older = checkpoints.candidates(mummi_run / 'checkpoints')[-1]
  assert export.restored_agent(mummi_run, older)[3] == checkpoints.step_of(older)


def test_a_second_run_on_a_logdir_in_use_is_refused(tmp_path, capsys):
  from mummi_tf.run import rundir
  held = rundir.lock(tmp_path)
  try:
    assert train.main(args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f'is in use by another run (pid {os.getpid()})' in err and err.count('\n') == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.lock']  # nothing written
  finally:
    held.close()
  # A run that dies (kill -9) leaves no lock behind.
  holder = subprocess.Popen([
      sys.executable, '-c',
      ('import sys, time; sys.path.insert(0, %r); from mummi_tf.run import rundir; '
       'held = rundir.lock(%r); print("locked", flush=True); time.sleep(60)') %
      (str(train.REPO), str(tmp_path))
  ], stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'locked'
  with pytest.raises(train.UsageError, match='in use by another run'):
    rundir.lock(tmp_path)
  holder.kill()
  holder.wait()
  rundir.lock(tmp_path).close()


def _truncate_checkpoint(prefix):
  for data in prefix.parent.glob(prefix.name + '.data-*'):
    data.write_bytes(data.read_bytes()[:200])


def test_a_damaged_newest_checkpoint_falls_back_to_an_older_one(mummi_run, tmp_path, caplog,
                                                                capsys):
  """Training, --eval_only and export all use the newest checkpoint that restores."""
  import pathlib
  from mummi_tf.run import checkpoints
  from mummi_tf.cli import export as export_cli
  from mummi_tf.run import export
  logdir = tmp_path / 'copy'
  subprocess.run(['cp', '-r', str(mummi_run), str(logdir)], check=True)
  newest, older = [pathlib.Path(p) for p in checkpoints.candidates(logdir / 'checkpoints')[:2]]
  _truncate_checkpoint(newest)
  assert train.main(args(logdir) + ['--eval_only', '--eval_episodes', '1']) == 0
  assert f'Checkpoint {newest.name} does not restore (IndexError' in caplog.text
  assert f'using {older.name} instead' in caplog.text
  gin.clear_config()
  assert export_cli.main(['--logdir', str(logdir), '--out', str(tmp_path / 'model')]) == 0
  meta = json.loads((tmp_path / 'model' / export.METADATA).read_text())
  assert meta['checkpoint'] == older.name
  gin.clear_config()
  cut = logdir / 'checkpoints' / 'ckpt-9000_temp'  # a write killed mid-way (issue 34, item 11)
  cut.mkdir()
  (cut / 'part-00000-of-00001.data-00000-of-00001').write_bytes(b'')
  assert train.main(args(logdir, extra=['Trainer.steps = 600'])) == 0  # trains on
  assert checkpoints.candidates(logdir / 'checkpoints')[0].endswith('ckpt-600')
  assert not cut.exists() and 'a checkpoint write cut short' in caplog.text
  # When none restores: one line naming each, exit 2, nothing trained.
  for prefix in checkpoints.candidates(logdir / 'checkpoints'):
    _truncate_checkpoint(pathlib.Path(prefix))
  gin.clear_config()
  capsys.readouterr()
  assert train.main(args(logdir, extra=['Trainer.steps = 720'])) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'no checkpoint in' in err and 'ckpt-600: IndexError' in err
  assert replay_lib.count_steps(logdir / 'episodes') * 2 == 600


def test_a_crash_in_evaluation_keeps_the_round_and_the_redo_replaces_it(tmp_path, monkeypatch):
  """The round's metrics are written before evaluating; a resumed run redoes the cut
  evaluation once, without duplicate episodes."""
  from mummi_tf.run import evaluation
  original = evaluation.Evaluator._log

  def crash_on_second_condition(self, logger, name, episodes, step):
    if step == 480 and name == 'medium':
      raise RuntimeError('simulated crash during evaluation')
    return original(self, logger, name, episodes, step)

  monkeypatch.setattr(evaluation.Evaluator, '_log', crash_on_second_condition)
  with pytest.raises(RuntimeError, match='simulated crash'):
    train.main(args(tmp_path))
  lines = read_metrics(tmp_path)
  assert any(l['step'] == 480 and 'model_loss' in l for l in lines)  # the round survived
  assert not any(l['step'] == 480 and 'test/return' in l for l in lines)
  assert (tmp_path / 'eval_episodes' / '.step-480' / 'none').is_dir()  # staged, not in place
  assert len(replay_lib.episode_files(tmp_path / 'eval_episodes' / 'none')) == 1
  monkeypatch.undo()
  gin.clear_config()
  assert train.main(args(tmp_path)) == 0
  lines = read_metrics(tmp_path)
  assert [l['step'] for l in lines if 'test/return' in l] == [240, 480]
  for level in ('none', 'medium', 'high'):
    assert len(replay_lib.episode_files(tmp_path / 'eval_episodes' / level)) == 2, level
  assert not list((tmp_path / 'eval_episodes').glob('.step-*'))
  gin.clear_config()
  assert train.main(args(tmp_path)) == 0  # a finished run is not evaluated again
  assert [l['step'] for l in read_metrics(tmp_path) if 'test/return' in l] == [240, 480]


def test_upstream_task_names_and_the_upstream_config():
  """`--task dmc_walker_walk --gin_file dreamer_upstream` is upstream's experiment."""
  parsed = train.parse_args([
      '--task', 'dmc_walker_walk', '--logdir', 'unused', '--gin_file', 'dreamer_upstream'
  ])
  train.configure(parsed)
  assert parsed.task == 'walker_walk'
  query = gin.query_parameter
  assert query('WorldModel.method') == 'dreamer'
  assert query('mummi_tf.envs.make.modalities') == ('rgb',)
  assert query('mummi_tf.envs.make.missing') == 'none'
  assert query('mummi_tf.envs.dmc.load.background') == 'none'
  assert query('WorldModel.clip') == query('ActorCritic.clip') == 100.0
  assert query('WorldModel.eps') == query('ActorCritic.eps') == 1e-7
  assert query('ActorCritic.slow_target_every') == 0 and query('ActorCritic.entropy') == 0.0
  assert query('WorldModel.train_prior') is False and query('ActorCritic.mpc') is False
  assert query('Agent.eval_policy') == 'sample'
  assert (query('Trainer.batch_size'), query('Trainer.batch_length')) == (50, 50)
  from mummi_tf import envs
  assert envs.suite_of('dmc_cup_catch') == 'dmc' and envs.canonical_task('toy2d_x_y') == 'toy2d_x_y'


def test_a_run_starts_quietly_with_one_summary_line(tmp_path):
  """No TF C++ banner, no gin include noise: the summary line is the first output."""
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  command = [
      sys.executable, '-m', 'mummi_tf.cli.train', '--task', 'toy2d_x_y', '--logdir',
      str(tmp_path / 'run'), '--gin_files', 'dreamer', '--gin_files', 'toy2d_learn', '--steps',
      '200'
  ]
  for binding in ('Trainer.prefill = 100', 'Trainer.train_every = 100', 'Trainer.train_steps = 5',
                  'set_threads.intra_op = 1', 'set_threads.inter_op = 2'):  # small.gin's pools
    command += ['--gin_bindings', binding]
  result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = [
      l for l in (result.stderr + result.stdout).replace('\r', '\n').splitlines()
      if l.strip() and 'step/s' not in l and '%|' not in l
  ]
  assert lines and lines[0].startswith(
      f'toy2d_x_y · dreamer · {tmp_path / "run"} · fresh · '), lines[:3]
  assert lines[0].endswith(
      ' · CPU · threads 1/op, 2 ops · 1 env worker · deterministic ops'), lines[0]
  # The first estimate comes after a few updates, not after two windows of them (issue 36).
  early = [l for l in lines if l.startswith('updates take ')]
  assert len(early) == 1 and 'the remaining 100 env steps take at least' in early[0], lines
  # One line per evaluation, then the run's story and the next commands.
  evals = [l for l in lines if l.startswith('eval at ')]
  assert evals == [l for l in evals if ' env steps: none ' in l and l.endswith(' (10 episodes)')
                  ], evals
  assert evals and evals[-1].startswith('eval at 200 env steps: '), lines
  assert lines[-7].startswith(f'run finished: {tmp_path / "run"}; this command took '), lines[-7:]
  assert ' 0 min' not in lines[-7] and ' 0 s' not in lines[-7], lines[-7]
  assert lines[-6].startswith('test return (all sensors): final ') and lines[-5] == 'next:'
  assert f'make eval LOGDIR={tmp_path / "run"}' in lines[-3]
  for noise in ('I0000', 'E0000', 'oneDNN', 'cuInit', 'Path not found'):
    assert noise not in result.stderr, noise
  assert (tmp_path / 'run' / 'operative_config.gin').read_text().count('Trainer.') > 5


def test_the_state_setting_trains_on_proprioception_in_symlog_space(tmp_path):
  """gin/state.gin: the suite's state as the only modality, fed as symlog(x)."""
  assert train.main(
      args(tmp_path, 'dreamer', extra=['Trainer.eval_every = 480'], task='walker_stand') +
      ['--gin_file', 'state']) == 0
  run = json.loads((tmp_path / 'run.json').read_text())
  assert set(run['obs_spec']) >= {'state', 'state_flag'} and 'rgb' not in run['obs_spec']
  assert 'WorldModel.symlog_vectors = True' in (tmp_path / 'config.gin').read_text()
  metrics = merged(read_metrics(tmp_path))
  assert np.isfinite(metrics['recon_loss/state']) and 'test/return_none' in metrics


def test_op_determinism_is_on_by_default_on_a_cpu_and_opt_in_on_a_gpu():
  from mummi_tf.run import trainer
  assert trainer.resolve_determinism('auto', []) is True
  assert trainer.resolve_determinism('auto', ['/physical_device:GPU:0']) is False
  assert trainer.resolve_determinism(True, ['/physical_device:GPU:0']) is True
  assert trainer.resolve_determinism(False, []) is False
  with pytest.raises(ValueError, match="True, False or 'auto'"):
    trainer.resolve_determinism('yes', [])


def test_an_op_without_a_deterministic_kernel_gets_one_line_naming_it():
  import tensorflow as tf

  from mummi_tf.run import trainer
  # The message TF gives on a GPU (UnsortedSegmentSum, TF 2.21), on TF's own error class.
  error = tf.errors.UnimplementedError(
      None, None, 'Deterministic GPU implementation of unsorted segment reduction op not '
      'available.\n\t [[{{node UnsortedSegmentSum}}]]')
  line = trainer.determinism_error(error)
  assert '\n' not in line and 'unsorted segment reduction' in line
  assert "Trainer.deterministic = 'auto'" in line


def test_a_run_written_before_the_package_split_evaluates_exports_and_resumes(tmp_path, capsys):
  """tests/data/pre_split_run was written by commit 081d3c793ff1, before mummi_tf/ split into
  model/, run/ and cli/ (issue 35): its config.gin imports the old module paths, its checkpoint
  holds the old objects. It must evaluate, export and resume as it is."""
  from mummi_tf.cli import export as export_cli
  logdir = tmp_path / 'old'
  shutil.copytree(train.REPO / 'tests' / 'data' / 'pre_split_run', logdir)
  assert (logdir / 'config.gin').read_text().startswith('import mummi_tf.agent\n')
  assert train.main(['--logdir', str(logdir), '--eval_only', '--eval_episodes', '1']) == 0
  assert 'resumed at step 240 from ckpt-240' in capsys.readouterr().out
  gin.clear_config()
  assert export_cli.main(['--logdir', str(logdir), '--out', str(tmp_path / 'model')]) == 0
  assert json.loads((tmp_path / 'model' / 'metadata.json').read_text())['checkpoint_step'] == 240
  gin.clear_config()
  assert train.main(['--logdir', str(logdir), '--steps', '360']) == 0
  assert 'resumed at step 240 from ckpt-240' in capsys.readouterr().out
  assert (logdir / 'checkpoints' / 'ckpt-360.index').exists()
