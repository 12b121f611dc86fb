"""SavedModel export (issue 5): TF-only reload, equality with the in-process
policy, every subset of modalities, metadata, bad inputs and usage errors."""
import json
import os
import pathlib
import runpy
import shutil
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from mummi_tf.model import agent as agent_lib
from mummi_tf.cli import export as export_cli
from mummi_tf.run import export
from mummi_tf.run import export_tflite
from test_agent import ACTION_SIZE, ACTION_SPEC, OBS_SPEC, bind_tiny, make_obs

REPO = pathlib.Path(__file__).resolve().parents[1]
SITE = pathlib.Path(tf.__file__).resolve().parents[1]  # site-packages of TF.
STEP = 1234


def write_logdir(logdir, agent):
  """The layout mummi_tf.run.trainer writes: checkpoints/, config.gin, run.json."""
  ckpt = tf.train.Checkpoint(agent=agent, updates=tf.Variable(0, tf.int64))
  tf.train.CheckpointManager(ckpt, logdir / 'checkpoints', 3).save(checkpoint_number=STEP)
  (logdir / 'config.gin').write_text(gin.config_str())
  run = {
      'task': 'walker_stand',
      'method': 'mummi',
      'seed': 0,
      'obs_spec': {
          k: [list(v.shape), np.dtype(v.dtype).name] for k, v in OBS_SPEC.items()
      },
      'action_spec': {
          'shape': [ACTION_SIZE],
          'minimum': [-1.0] * ACTION_SIZE,
          'maximum': [1.0] * ACTION_SIZE
      }
  }
  (logdir / 'run.json').write_text(json.dumps(run))


# Four steps of a batch of 3: all present, rgb missing, touch missing, none;
# row 1 restarts at step 2.
FLAGS = [{}, {'rgb': 0.0}, {'touch': 0.0}, {'rgb': 0.0, 'touch': 0.0}]


def sequence():
  steps = []
  for t, flags in enumerate(FLAGS):
    obs = make_obs(3, seed=10 + t, flags=flags)
    obs['is_first'][:] = t == 0
    if t == 2:
      obs['is_first'][1] = True
    steps.append(obs)
  return steps


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp('export')
  logdir = root / 'logdir'
  logdir.mkdir()
  bind_tiny()
  tf.random.set_seed(3)
  agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  write_logdir(logdir, agent)
  state, actions = None, []
  for obs in sequence():
    action, state = agent.policy(obs, state, training=False)
    actions.append(action.numpy())
  gin.clear_config()
  out = root / 'policy'
  assert export_cli.main(['--logdir', str(logdir), '--out', str(out)]) == 0
  gin.clear_config()
  return logdir, out, np.stack(actions)


SCRIPT = r'''
import importlib.util, json, sys
sys.path.append(SITE)
import numpy as np
assert importlib.util.find_spec('mummi_tf') is None, 'mummi_tf importable'
import tensorflow as tf
model = tf.saved_model.load(MODEL)
data = np.load(INPUTS)
names = json.loads(str(data['names']))
state = model.initial_state(tf.constant(3))
actions = []
for t in range(int(data['steps'])):
  obs = {m: tf.constant(data[f'{t}/{m}']) for m in names}
  flags = {m: tf.constant(data[f'{t}/{m}_flag']) for m in names}
  action, state = model.step(obs, flags, state, tf.constant(data[f'{t}/is_first']))
  assert action.dtype == tf.float32 and set(state) == {
      'mean', 'std', 'stoch', 'deter', 'action'}
  actions.append(action.numpy())
for banned in ('mummi_tf', 'tf_keras', 'tensorflow_probability', 'gin'):
  assert banned not in sys.modules, banned + ' was imported'
np.save(OUTPUT, np.stack(actions))
'''


def test_reload_without_package_equals_in_process_policy(exported, tmp_path):
  _, out, expected = exported
  inputs = {'names': json.dumps(['rgb', 'touch']), 'steps': len(FLAGS)}
  for t, obs in enumerate(sequence()):
    for key in ('rgb', 'touch', 'rgb_flag', 'touch_flag', 'is_first'):
      inputs[f'{t}/{key}'] = obs[key]
  np.savez(tmp_path / 'inputs.npz', **inputs)
  script = SCRIPT.replace('SITE', repr(str(SITE))).replace('MODEL', repr(str(out))).replace(
      'INPUTS', repr(str(tmp_path / 'inputs.npz'))).replace('OUTPUT',
                                                            repr(str(tmp_path / 'actions.npy')))
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  proc = subprocess.run([sys.executable, '-I', '-S', '-c', script], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = np.load(tmp_path / 'actions.npy')
  assert got.shape == expected.shape == (len(FLAGS), 3, ACTION_SIZE)
  assert np.all(np.isfinite(got)) and np.all(np.abs(got) <= 1.0)
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_metadata_beside_the_model(exported):
  _, out, _ = exported
  assert (out / 'saved_model.pb').is_file()
  meta = json.loads((out / 'metadata.json').read_text())
  assert meta['task'] == 'walker_stand' and meta['checkpoint_step'] == STEP
  assert meta['modalities'] == {
      'rgb': {
          'shape': [64, 64, 3],
          'dtype': 'uint8',
          'kind': 'image'
      },
      'touch': {
          'shape': [2],
          'dtype': 'float32',
          'kind': 'vector'
      }
  }
  assert meta['action_spec']['shape'] == [ACTION_SIZE]
  assert 'WorldModel.deter = 8' in meta['gin_config']
  assert meta['mpc'] is True and meta['stochastic'] is False


def test_bad_shape_or_dtype_is_rejected(exported):
  _, out, _ = exported
  model = tf.saved_model.load(str(out))
  state = model.initial_state(tf.constant(2))
  flags = {m: tf.ones([2]) for m in ('rgb', 'touch')}
  first = tf.constant([True, True])
  good = {'rgb': tf.zeros([2, 64, 64, 3], tf.uint8), 'touch': tf.zeros([2, 2])}
  action, _ = model.step(good, flags, state, first)
  assert action.shape == (2, ACTION_SIZE)
  for bad in ({
      'rgb': tf.zeros([2, 32, 32, 3], tf.uint8)
  }, {
      'rgb': tf.zeros([2, 64, 64, 3], tf.float64)
  }, {
      'touch': tf.zeros([2, 3])
  }):
    with pytest.raises((TypeError, ValueError), match='Could not find matching'):
      model.step({**good, **bad}, flags, state, first)
  with pytest.raises(tf.errors.InvalidArgumentError, match='batch size'):
    model.step({**good, 'touch': tf.zeros([3, 2])}, flags, state, first)


def test_values_are_checked_not_trusted(exported):
  """Non-finite inputs, flags outside {0, 1} and float images that are not pixels are
  refused naming the input; a NaN state is reset by is_first; float pixel arrays act as
  their uint8 values."""
  _, out, _ = exported
  model = tf.saved_model.load(str(out))
  state = model.initial_state(tf.constant(2))
  ones = {m: np.ones([2], np.float32) for m in ('rgb', 'touch')}
  first = np.array([True, True])
  rgb = np.random.default_rng(0).integers(0, 256, [2, 64, 64, 3]).astype(np.uint8)
  good = {'rgb': rgb, 'touch': np.zeros([2, 2], np.float32)}
  action, _ = model.step(good, ones, state, first)
  as_float, _ = model.step({**good, 'rgb': rgb.astype(np.float32)}, ones, state, first)
  np.testing.assert_allclose(as_float, action, atol=1e-6)
  refused = [
      ({
          **good, 'rgb': rgb / 255.0
      }, ones, r'observations rgb must hold uint8 pixel'),
      ({
          **good, 'touch': np.full([2, 2], np.nan, np.float32)
      }, ones, r'observations touch must be finite where its flag is 1'),
      (good, {
          **ones, 'rgb': np.array([np.nan, 1], np.float32)
      }, r'flags rgb must be 0 \(missing\) or 1'),
      (good, {
          **ones, 'touch': np.array([0.5, 1], np.float32)
      }, r'flags touch must be 0'),
  ]
  for obs, flags, message in refused:
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      model.step(
          {
              k: np.asarray(v, np.float32) if k == 'rgb' and v.dtype != np.uint8 else v
              for k, v in obs.items()
          }, flags, state, first)
  # A missing sensor's value is not read: NaN touch with flag 0 is fine.
  action, _ = model.step({
      **good, 'touch': np.full([2, 2], np.nan, np.float32)
  }, {
      **ones, 'touch': np.zeros([2], np.float32)
  }, state, first)
  assert np.all(np.isfinite(action))
  nan_state = {k: tf.fill(tf.shape(v), np.nan) for k, v in state.items()}
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'state [a-z]+ must be finite'):
    model.step(good, ones, nan_state, np.array([False, False]))
  action, new_state = model.step(good, ones, nan_state, first)  # reset by a select
  assert np.all(np.isfinite(action)) and all(np.all(np.isfinite(v)) for v in new_state.values())


def test_usage_errors_and_force(exported, tmp_path, capsys):
  logdir, shared, _ = exported
  out = tmp_path / 'policy'  # a copy: the other tests keep the fixture's model
  shutil.copytree(shared, out)
  empty = tmp_path / 'empty'
  (empty / 'checkpoints').mkdir(parents=True)
  assert export_cli.main(['--logdir', str(empty), '--out', str(tmp_path / 'x')]) == 2
  assert 'no checkpoint' in capsys.readouterr().err
  assert not (tmp_path / 'x').exists()
  before = (out / 'saved_model.pb').stat().st_mtime_ns
  assert export_cli.main(['--logdir', str(logdir), '--out', str(out)]) == 2
  assert '--force' in capsys.readouterr().err
  assert (out / 'saved_model.pb').stat().st_mtime_ns == before
  # A checkpoint of other sizes than config.gin says: one clear line, exit 2.
  other = tmp_path / 'other'
  shutil.copytree(logdir, other)
  config = (other / 'config.gin').read_text()
  (other / 'config.gin').write_text(config.replace('WorldModel.deter = 8', 'WorldModel.deter = 16'))
  assert export_cli.main(['--logdir', str(other), '--out', str(tmp_path / 'y')]) == 2
  assert 'does not match' in capsys.readouterr().err
  assert not (tmp_path / 'y').exists()
  # --force replaces it; here with the stochastic, MPC-free variant.
  assert export_cli.main([
      '--logdir', str(logdir), '--out',
      str(out), '--force', '--no_mpc', '--stochastic'
  ]) == 0
  gin.clear_config()
  meta = json.loads((out / 'metadata.json').read_text())
  assert meta['mpc'] is False and meta['stochastic'] is True
  model = tf.saved_model.load(str(out))
  obs = make_obs(5)
  args = ({
      m: tf.constant(obs[m]) for m in ('rgb', 'touch')
  }, {
      m: tf.constant(obs[f'{m}_flag']) for m in ('rgb', 'touch')
  }, model.initial_state(tf.constant(5)), tf.constant(obs['is_first']))
  a1, a2 = model.step(*args)[0].numpy(), model.step(*args)[0].numpy()
  assert not np.allclose(a1, a2) and np.all(np.abs(a1) <= 1.0)


def test_tool_exits_2_without_checkpoint(tmp_path, monkeypatch, capsys):
  # The real script, run as __main__ in this process (no second TF import).
  monkeypatch.setattr(sys, 'argv', ['export_savedmodel.py', '--logdir', str(tmp_path)])
  with pytest.raises(SystemExit) as exit_info:
    runpy.run_path(str(REPO / 'tools' / 'export_savedmodel.py'), run_name='__main__')
  assert exit_info.value.code == 2
  assert 'no checkpoint' in capsys.readouterr().err
  assert not (tmp_path / 'savedmodel').exists()


def _flat_inputs(obs, state):
  inputs = {f'obs_{m}': tf.constant(obs[m]) for m in ('rgb', 'touch')}
  inputs.update({f'flag_{m}': tf.constant(obs[f'{m}_flag']) for m in ('rgb', 'touch')})
  inputs.update({f'state_{k}': v for k, v in state.items()})
  inputs['is_first'] = tf.constant(obs['is_first'])
  return inputs


def test_signatures_drive_a_closed_loop_with_flat_named_tensors(exported):
  _, out, expected = exported
  model = tf.saved_model.load(str(out))
  assert set(model.signatures) == {'initial_state', 'step'}
  step = model.signatures['step']
  names = export.flat_names(['rgb', 'touch'], ['action', 'deter', 'mean', 'std', 'stoch'])
  assert sorted(step.structured_input_signature[1]) == names[0]
  assert sorted(step.structured_outputs) == names[1]
  state = model.signatures['initial_state'](batch_size=tf.constant(3))
  state = {k[len('state_'):]: v for k, v in state.items()}
  for t, obs in enumerate(sequence()):
    result = step(**_flat_inputs(obs, state))
    np.testing.assert_allclose(result['action'].numpy(), expected[t], atol=1e-5)
    state = {k[len('state_'):]: v for k, v in result.items() if k.startswith('state_')}


def test_the_export_tool_starts_quietly_and_refuses_a_missing_logdir_in_one_line(tmp_path):
  """Run directly (not through make, which sets TF_CPP_MIN_LOG_LEVEL): no TF C++ start-up
  lines, one error line, exit 2 (issue 36)."""
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  tool = pathlib.Path(__file__).resolve().parents[1] / 'tools' / 'export_savedmodel.py'
  proc = subprocess.run(
      [sys.executable, str(tool), '--logdir',
       str(tmp_path / 'none')], env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
  for noise in ('oneDNN', 'cuda', 'I0000', 'E0000'):
    assert noise not in proc.stderr, noise


def test_the_flat_signature_checks_image_shapes_and_empty_batches(exported):
  """The flat ``step`` signature (saved_model_cli, TF Serving, TFLite) accepts any image
  size by its spec: a 62 x 62 or 64 x 66 image and a batch of 0 are refused naming the input
  (issue 34, items 7 and 8), not run through the conv encoder."""
  _, out, _ = exported
  model = tf.saved_model.load(str(out))
  step = model.signatures['step']
  obs = sequence()[0]
  state = {
      k[len('state_'):]: v
      for k, v in model.signatures['initial_state'](batch_size=tf.constant(3)).items()
  }
  for size in ((62, 62), (64, 66)):
    bad = dict(obs, rgb=np.zeros((3,) + size + (3,), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r'observations rgb must have shape \(batch, 64, 64, 3\)'):
      step(**_flat_inputs(bad, state))
  empty = {k: v[:0] for k, v in obs.items()}
  none = {k: v[:0] for k, v in state.items()}
  with pytest.raises(tf.errors.InvalidArgumentError, match='the batch is empty'):
    step(**_flat_inputs(empty, none))


def test_saved_model_cli_runs_the_step_signature(exported, tmp_path):
  _, out, expected = exported
  obs = sequence()[0]
  model = tf.saved_model.load(str(out))
  state = model.signatures['initial_state'](batch_size=tf.constant(3))
  inputs = {k: v.numpy() for k, v in _flat_inputs(obs, {}).items()}
  inputs.update({k: v.numpy() for k, v in state.items()})
  np.savez(tmp_path / 'inputs.npz', **inputs)
  cli = pathlib.Path(sys.executable).parent / 'saved_model_cli'
  proc = subprocess.run([
      str(cli), 'run', '--dir',
      str(out), '--tag_set', 'serve', '--signature_def', 'step', '--inputs', ';'.join(
          f'{k}={tmp_path / "inputs.npz"}[{k}]' for k in inputs), '--outdir',
      str(tmp_path / 'outputs')
  ], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  np.testing.assert_allclose(np.load(tmp_path / 'outputs' / 'action.npy'), expected[0], atol=1e-5)
  # The example shipped beside the model: one command, one row in, one action out.
  args = (out / 'example_inputs.args').read_text().strip()
  proc = subprocess.run([
      str(cli), 'run', '--dir',
      str(out), '--tag_set', 'serve', '--signature_def', 'step', '--inputs', args, '--outdir',
      str(tmp_path / 'example')
  ], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert np.load(tmp_path / 'example' / 'action.npy').shape == (1, ACTION_SIZE)


# Layers of >= 1024 weights, which dynamic-range quantisation turns int8 (smaller ones stay
# float32): the conv encoder's last three convs, the GRU, the PoE experts, the actor.
WIDE = {
    'WorldModel.cnn_depth': 8,
    'WorldModel.deter': 32,
    'WorldModel.hidden': 32,
    'WorldModel.expert_hidden': 64,
    'WorldModel.mlp_units': 32,
    'WorldModel.embed': 32,
    'Actor.units': 32,
}
ACTOR_GAIN = 20.0  # scales the actor's output layer: actions span [-1, 1], not ~0.
# Max |int8 action - float32 action| (actions in [-1, 1]). One step from the same state:
# 0.011-0.029 measured over six seeds of this fixture (float16 weights: <= 0.001). Closed
# loop, each model on its own state: 0.013-0.35, since this random recurrent model amplifies
# a state difference (float16's 0.001 grows to 0.013 likewise). A model fed a wrong state
# is off by > 0.9.
INT8_STEP_BOUND = 0.05
INT8_LOOP_BOUND = 0.5


@pytest.fixture(scope='module')
def tflite_exported(tmp_path_factory):
  """A wider policy exported with --no_mpc --tflite (int8); its actor's output layer is
  scaled so that the actions span [-1, 1] (an untrained actor's stay near 0)."""
  root = tmp_path_factory.mktemp('tflite')
  logdir = root / 'logdir'
  logdir.mkdir()
  bind_tiny(**WIDE)
  keras.utils.set_random_seed(2)
  agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  last = agent.behavior.actor._net._layers[-1]
  last.kernel.assign(ACTOR_GAIN * last.kernel)
  write_logdir(logdir, agent)
  gin.clear_config()
  out = root / 'policy'
  code = export_cli.main(['--logdir', str(logdir), '--out', str(out), '--no_mpc', '--tflite'])
  gin.clear_config()
  assert code == 0
  return logdir, out


def tflite_sequence():
  """Eight steps of a batch of 3: every subset of sensors missing (a missing touch reads
  NaN), row 1 restarting at step 2."""
  steps = []
  for t, flags in enumerate(FLAGS + FLAGS[::-1]):
    obs = make_obs(3, seed=20 + t, flags=flags)
    obs['touch'][obs['touch_flag'] == 0] = np.nan
    obs['is_first'][:] = t == 0
    obs['is_first'][1] |= t == 2
    steps.append(obs)
  return steps


def _tflite_inputs(obs):
  inputs = {f'obs_{m}': obs[m] for m in ('rgb', 'touch')}
  inputs.update({f'flag_{m}': obs[f'{m}_flag'] for m in ('rgb', 'touch')})
  inputs['is_first'] = obs['is_first']
  return inputs


def _states(outputs):
  return {k: np.asarray(v) for k, v in outputs.items() if k.startswith('state_')}


def tflite_loop(model, path):
  """Drives the float32 SavedModel and a .tflite file side by side through their
  signatures; returns the actions (steps, B, A) of the SavedModel, of the .tflite in closed
  loop (its own state fed back), of the .tflite fed the SavedModel's state (one-step error)
  and of the .tflite fed the initial state at every step (a wrong model)."""
  initial_state, step = export_tflite.signature_runners(path)
  ref_state = _states(model.signatures['initial_state'](batch_size=tf.constant(3)))
  state = initial_state(batch_size=np.array(3, np.int32))
  start = dict(state)
  actions = {'ref': [], 'loop': [], 'one_step': [], 'wrong': []}
  for obs in tflite_sequence():
    inputs = _tflite_inputs(obs)
    actions['one_step'].append(step(**inputs, **ref_state)['action'])
    actions['wrong'].append(step(**inputs, **start)['action'])
    out = model.signatures['step'](**{k: tf.constant(v) for k, v in inputs.items()}, **ref_state)
    actions['ref'].append(out['action'].numpy())
    ref_state = _states(out)
    out = step(**inputs, **state)
    actions['loop'].append(out['action'])
    state = _states(out)
  return {k: np.stack(v) for k, v in actions.items()}


def test_tflite_int8_closed_loop_matches_the_float32_savedmodel(tflite_exported, tmp_path):
  """policy.tflite (builtin ops, int8 weights) through its signature runners alone:
  initial_state, then steps feeding the state back with sensors missing, within the
  bounds above of the SavedModel's float32 step; the float32 .tflite within 1e-5 from the
  same state."""
  _, out = tflite_exported
  meta = json.loads((out / 'metadata.json').read_text())
  assert meta['mpc'] is False and meta['tflite']['quantize'] == 'int8'
  assert meta['tflite']['bytes'] == (out / 'policy.tflite').stat().st_size
  interpreter = export_tflite.interpreter(out / 'policy.tflite')
  assert set(interpreter.get_signature_list()) == {'initial_state', 'step'}
  tensors = [
      d for i in range(interpreter.num_subgraphs()) for d in interpreter.get_tensor_details(i)
  ]
  assert any(d['dtype'] == np.int8 for d in tensors), 'no int8 weights'
  model = tf.saved_model.load(str(out))
  actions = tflite_loop(model, out / 'policy.tflite')
  ref, loop = actions['ref'], actions['loop']
  assert np.all(np.isfinite(loop)) and np.all(np.abs(loop) <= 1.0)
  assert np.abs(ref).max() > 0.5, 'actions too small for the bounds to mean anything'
  one_step, closed = np.abs(actions['one_step'] - ref).max(), np.abs(loop - ref).max()
  assert one_step <= INT8_STEP_BOUND and closed <= INT8_LOOP_BOUND, (one_step, closed)
  assert np.abs(actions['wrong'][2:] - ref[2:]).max() > 1.5 * INT8_LOOP_BOUND
  (tmp_path / 'float32.tflite').write_bytes(export_tflite.convert(out, 'none'))
  actions = tflite_loop(model, tmp_path / 'float32.tflite')
  np.testing.assert_allclose(actions['one_step'], actions['ref'], atol=1e-5)
  # float32 rounding (XNNPACK's kernels, not oneDNN's), amplified as above over 8 steps.
  np.testing.assert_allclose(actions['loop'], actions['ref'], atol=1e-3)


def test_tflite_usage_errors(exported, tmp_path, capsys):
  """A bad --tflite value or a policy with MPC: one error line, exit 2, nothing written."""
  logdir, _, _ = exported
  out = tmp_path / 'policy'
  assert export_cli.main(['--logdir', str(logdir), '--out', str(out), '--tflite', 'int4']) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and '--tflite must be one of int8, float16, none' in err
  assert export_cli.main(['--logdir', str(logdir), '--out', str(out), '--tflite', 'float16']) == 2
  gin.clear_config()
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'needs the policy without MPC (--no_mpc' in err
  assert not out.exists() and not list(tmp_path.iterdir())
