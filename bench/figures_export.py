"""Figure 6: latency of the exported policy step, batch 1, CPU, from a freshly built
(untrained) MuMMI agent.

* ``export/policy_step`` (``_mpc``): the SavedModel step without and with latent-guided MPC;
* ``export/weight_floor``: the SavedModel step (no MPC) against its memory floor, the time
  to read the policy's weight bytes once, measured in the same run: a float32 buffer of the
  same byte count read by numpy's ``max`` (one thread, SIMD) and by ``tf.reduce_sum``
  (TF's thread pool), the faster of the two per repeat, each repeat interleaved with the
  step's so that the machine's load hits both alike;
* ``export/tflite_int8``: the step of ``policy.tflite`` with int8 (dynamic-range) weights
  (``mummi_tf.run.export_tflite``), with its action error against the float32 SavedModel;
* ``export/tflite_float32``: the float32 ``policy.tflite`` against the same floor.
"""
import json
import pathlib
import tempfile
import time

import numpy as np

from bench import report
from bench import update_probe

UNIT = 'ms/step'
GOAL = ('value_max', 3.0)
FLOOR_GOAL = ('ratio_max', 1.3)
ERROR_STEPS = 10  # closed-loop steps of the action-error comparison


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


def weight_bytes(model):
  """Bytes of the variables the exported policy reads."""
  return sum(int(np.prod(v.shape)) * v.dtype.size for v in model.policy_variables)


def _readers(nbytes):
  """Two read-once passes over a float32 buffer of ``nbytes``: numpy's max (one thread)
  and ``tf.reduce_sum`` (TF's intra-op thread pool, as the step's kernels use)."""
  import tensorflow as tf
  host = np.random.default_rng(0).random(max(1, nbytes // 4), dtype=np.float32)
  tensor = tf.constant(host)
  tf_sum = tf.function(lambda: tf.reduce_sum(tensor))
  return host.max, lambda: tf_sum().numpy()


def _per_call_ms(fn, calls):
  start = time.perf_counter()
  for _ in range(calls):
    fn()
  return (time.perf_counter() - start) / calls * 1e3


def _interleaved(fns, calls, repeats):
  """{name: [ms per call, one per repeat]}; after a warm-up, each repeat times every
  function in turn, so that a change of the machine's load hits all of them alike."""
  for fn in fns.values():
    for _ in range(3):
      fn()
  samples = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      samples[name].append(_per_call_ms(fn, calls))
  return samples


def _flat_inputs(rng):
  """Batch-1 inputs of the flat ``step`` signature (numpy), every sensor present."""
  inputs = {}
  for name, spec in update_probe.obs_spec().items():
    if name.endswith('_flag'):
      continue
    shape = (1,) + spec.shape
    inputs[f'obs_{name}'] = (
        rng.integers(0, 256, shape, np.uint8) if spec.dtype == np.uint8 else rng.normal(
            size=shape).astype(np.float32))
    inputs[f'flag_{name}'] = np.ones([1], np.float32)
  inputs['is_first'] = np.zeros([1], bool)
  return inputs


def _states(outputs):
  return {k: np.asarray(v) for k, v in outputs.items() if k.startswith('state_')}


def _savedmodel_stepper(model, inputs):
  """A batch-1 call of the SavedModel's ``step`` signature feeding its state back."""
  import tensorflow as tf
  step = model.signatures['step']
  tensors = {k: tf.constant(v) for k, v in inputs.items()}
  state = [dict(model.signatures['initial_state'](batch_size=tf.constant(1)))]

  def call():
    out = step(**tensors, **state[0])
    state[0] = {k: v for k, v in out.items() if k.startswith('state_')}
    out['action'].numpy()

  return call


def _tflite_stepper(path, inputs):
  """A batch-1 call of ``policy.tflite``'s ``step`` signature feeding its state back."""
  from mummi_tf.run import export_tflite
  initial_state, step = export_tflite.signature_runners(path)
  state = [initial_state(batch_size=np.array(1, np.int32))]

  def call():
    state[0] = _states(step(**inputs, **state[0]))

  return call


def action_error(model, path, steps=ERROR_STEPS):
  """Max |action| difference of ``path`` (.tflite) from the float32 SavedModel over
  ``steps`` random batch-1 inputs: (one step from the SavedModel's state, closed loop
  with each model on its own state), and the SavedModel's max |action|."""
  import tensorflow as tf
  from mummi_tf.run import export_tflite
  initial_state, step = export_tflite.signature_runners(path)
  ref_state = _states(model.signatures['initial_state'](batch_size=tf.constant(1)))
  state = initial_state(batch_size=np.array(1, np.int32))
  rng, one_step, closed, biggest = np.random.default_rng(1), 0.0, 0.0, 0.0
  for t in range(steps):
    inputs = dict(_flat_inputs(rng), is_first=np.array([t == 0]))
    out = model.signatures['step'](**{k: tf.constant(v) for k, v in inputs.items()}, **ref_state)
    ref = out['action'].numpy()
    one_step = max(one_step, float(np.abs(step(**inputs, **ref_state)['action'] - ref).max()))
    mine = step(**inputs, **state)
    closed = max(closed, float(np.abs(mine['action'] - ref).max()))
    biggest = max(biggest, float(np.abs(ref).max()))
    ref_state, state = _states(out), _states(mine)
  return one_step, closed, biggest


def floor_figures(model, path, calls, repeats, dims):
  """``export/weight_floor``, ``export/tflite_int8`` and ``export/tflite_float32`` of the
  MPC-free SavedModel at ``path`` (the .tflite files are written beside it)."""
  from mummi_tf.run import export_tflite
  nbytes = weight_bytes(model)
  inputs = _flat_inputs(np.random.default_rng(0))
  fns = {'savedmodel': _savedmodel_stepper(model, inputs)}
  files = {}
  for quantize in ('int8', 'none'):
    files[quantize] = pathlib.Path(path) / f'policy_{quantize}.tflite'
    files[quantize].write_bytes(export_tflite.convert(path, quantize))
    fns[quantize] = _tflite_stepper(files[quantize], inputs)
  numpy_max, tf_sum = _readers(nbytes)
  fns.update(numpy_max=numpy_max, tf_sum=tf_sum)
  samples = _interleaved(fns, calls, repeats)
  floor = [min(a, b) for a, b in zip(samples['numpy_max'], samples['tf_sum'])]
  how = (f'floor: the faster per repeat of numpy max / tf.reduce_sum over a float32 buffer of '
         f'the policy\'s {nbytes / 1e6:.3g} MB of weights (numpy max median '
         f'{np.median(samples["numpy_max"]):.2f} ms, tf.reduce_sum '
         f'{np.median(samples["tf_sum"]):.2f} ms), interleaved with the steps; {dims}, '
         'no MPC, batch 1')
  one_step, closed, biggest = action_error(model, files['int8'])
  out = {
      'export/weight_floor': report.figure(
          'export/weight_floor', samples['savedmodel'], UNIT, baseline_samples=floor,
          goal=FLOOR_GOAL, weight_bytes=nbytes,
          notes=f'SavedModel step signature vs the time to read its weights once; {how}'),
      'export/tflite_int8': report.figure(
          'export/tflite_int8', samples['int8'], UNIT, goal=GOAL,
          baseline_samples=samples['savedmodel'], model_bytes=files['int8'].stat().st_size,
          max_abs_action_error=closed, max_abs_action_error_one_step=one_step,
          notes=f'policy.tflite, int8 dynamic-range weights, TFLite builtins, XNNPACK, '
          f'its step signature fed its own state; baseline the float32 SavedModel step; '
          f'max |action - float32 SavedModel action| over {ERROR_STEPS} random-input '
          f'steps: {closed:.2g} closed loop, {one_step:.2g} from the same state (this '
          f'untrained actor\'s actions reach only {biggest:.2g}; trained policies: see '
          f'docs/deployment.md); {dims}'),
      'export/tflite_float32': report.figure(
          'export/tflite_float32', samples['none'], UNIT, baseline_samples=floor, goal=FLOOR_GOAL,
          model_bytes=files['none'].stat().st_size,
          notes=f'policy.tflite with float32 weights vs the same floor; {how}'),
  }
  return out


def _floor_failed(error):
  """The entries of ``floor_figures`` when they could not be measured."""
  goals = {
      'export/weight_floor': FLOOR_GOAL,
      'export/tflite_int8': GOAL,
      'export/tflite_float32': FLOOR_GOAL
  }
  return {name: report.failed(name, UNIT, goal, error) for name, goal in goals.items()}


def _floor_or_failed(model, path, calls, repeats, dims):
  try:
    return floor_figures(model, path, calls, repeats, dims)
  except Exception as e:  # noqa: BLE001 - reported as the figures' notes
    return _floor_failed(f'{type(e).__name__}: {e}')


def figures(repeats, calls, tiny):
  """Exports the policy without and with MPC; returns the entries of both steps and, for
  the one without MPC, ``floor_figures``."""
  import gin
  import tensorflow as tf
  from mummi_tf.run import export
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
        if not mpc:
          out.update(_floor_failed(f'the export failed: {type(e).__name__}: {e}'))
        continue
      finally:
        gin.clear_config()
      dims = 'tiny dims (smoke)' if tiny else 'paper dims (h 200, s^c 30, s^f 1024)'
      out[name] = report.figure(
          name, samples, UNIT, goal=None if mpc else GOAL,
          notes=f'tf.saved_model.load of mummi_tf.run.export (untrained MuMMI agent, {dims}, '
          f'rgb + depth + touch), batch 1, {"with" if mpc else "without"} latent-guided '
          'MPC, one step = encoders + PoE + MSSM filter + actor'
          f'{" + MPC imagination and its gradient" if mpc else ""}; each repeat the '
          'mean over consecutive calls feeding the state back')
      if not mpc:
        out.update(_floor_or_failed(model, path, calls, repeats, dims))
  return out
