"""Figure 6: latency of the exported SavedModel policy step, batch 1, CPU, with and
without latent-guided MPC, from a freshly built (untrained) MuMMI agent."""
import json
import pathlib
import tempfile
import time

import numpy as np

from bench import report
from bench import update_probe

UNIT = 'ms/step'
GOAL = ('value_max', 3.0)


def write_logdir(logdir, agent, method):
  """The training logdir layout of docs/ARCHITECTURE.md (as tests/test_export.py builds)."""
  import gin
  import tensorflow as tf
  ckpt = tf.train.Checkpoint(agent=agent, updates=tf.Variable(0, tf.int64))
  tf.train.CheckpointManager(ckpt, logdir / 'checkpoints', 1).save(checkpoint_number=0)
  (logdir / 'config.gin').write_text(gin.config_str())
  spec, act = update_probe.obs_spec(), update_probe.action_spec()
  run = {
      'task': 'walker_stand',
      'method': method,
      'seed': 0,
      'obs_spec': {
          k: [list(v.shape), np.dtype(v.dtype).name] for k, v in spec.items()
      },
      'action_spec': {
          'shape': list(act.shape),
          'minimum': [-1.0] * act.shape[0],
          'maximum': [1.0] * act.shape[0]
      }
  }
  (logdir / 'run.json').write_text(json.dumps(run))


def _inputs(model):
  import tensorflow as tf
  rng = np.random.default_rng(0)
  obs, flags = {}, {}
  for name, spec in update_probe.obs_spec().items():
    if name.endswith('_flag'):
      continue
    value = (
        rng.integers(0, 256, (1,) + spec.shape, np.uint8) if spec.dtype == np.uint8 else rng.normal(
            size=(1,) + spec.shape).astype(np.float32))
    obs[name] = tf.constant(value)
    flags[name] = tf.ones([1], tf.float32)
  return obs, flags, tf.zeros([1], tf.bool), model.initial_state(tf.constant(1, tf.int32))


def _latency(model, calls, repeats):
  obs, flags, is_first, state = _inputs(model)
  for _ in range(3):
    action, state = model.step(obs, flags, state, is_first)
  samples = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(calls):
      action, state = model.step(obs, flags, state, is_first)
    action.numpy()
    samples.append((time.perf_counter() - start) / calls * 1e3)
  return samples


def figures(repeats, calls, tiny):
  """Exports the policy without and with MPC; returns the two entries."""
  import gin
  import tensorflow as tf
  from mummi_tf import export
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    logdir = pathlib.Path(tmp) / 'logdir'
    logdir.mkdir()
    agent, _ = update_probe.build_agent('mummi', 'float32', tiny)
    write_logdir(logdir, agent, 'mummi')
    del agent
    for mpc in (False, True):
      name = f'export/policy_step{"_mpc" if mpc else ""}'
      try:
        path = pathlib.Path(tmp) / f'policy_mpc{int(mpc)}'
        export.export(logdir, path, mpc=mpc)
        model = tf.saved_model.load(str(path))
        samples = _latency(model, calls if not mpc else max(2, calls // 5), repeats)
      except Exception as e:  # noqa: BLE001 - reported as the figure's note
        out[name] = report.failed(name, UNIT, None if mpc else GOAL, f'{type(e).__name__}: {e}')
        continue
      finally:
        gin.clear_config()
      dims = 'tiny dims (smoke)' if tiny else 'paper dims (h 200, s^c 30, s^f 1024)'
      out[name] = report.figure(
          name, samples, UNIT, goal=None if mpc else GOAL,
          notes=f'tf.saved_model.load of mummi_tf.export (untrained MuMMI agent, {dims}, '
          f'rgb + depth + touch), batch 1, {"with" if mpc else "without"} latent-guided '
          'MPC, one step = encoders + PoE + MSSM filter + actor'
          f'{" + MPC imagination and its gradient" if mpc else ""}; each repeat the '
          'mean over consecutive calls feeding the state back')
  return out
