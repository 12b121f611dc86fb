"""Optimizer: clipping, skipping of non-finite steps, loss scaling."""
import numpy as np
import pytest
import tensorflow as tf

from mummi_tf.model.optim import Optimizer


def _step(opt, var, loss_fn):
  with tf.GradientTape() as tape:
    loss = loss_fn(var)
  return opt.minimize(tape, loss, [var])


@pytest.mark.parametrize('compiled', [False, True])
def test_minimize_decreases_loss_and_skips_nonfinite(compiled):
  var = tf.Variable([3.0, -2.0])
  opt = Optimizer('test', lr=0.1)
  good = lambda v: tf.reduce_sum(v**2)
  bad = lambda v: tf.reduce_sum(v**2) * np.nan
  step_good = tf.function(lambda: _step(opt, var, good)) if compiled else (
      lambda: _step(opt, var, good))
  step_bad = tf.function(lambda: _step(opt, var, bad)) if compiled else (
      lambda: _step(opt, var, bad))
  first = float(step_good()['test_loss'])
  for _ in range(20):
    metrics = step_good()
  assert float(metrics['test_loss']) < first
  before = var.numpy().copy()
  slots = [v.numpy().copy() for v in opt._opt.variables]
  metrics = step_bad()
  np.testing.assert_array_equal(var.numpy(), before)
  for s, v in zip(slots, opt._opt.variables):
    np.testing.assert_array_equal(v.numpy(), s)
  assert int(metrics['test_skipped']) == 1 and int(opt.skipped) == 1


def test_global_norm_clipping_limits_the_step():
  # Adam's step is lr * g / (|g| + eps): with g clipped far below eps the step
  # shrinks ~g/eps, unclipped it is ~lr.
  steps = {}
  for clip in (1e-8, None):
    var = tf.Variable([0.0])
    opt = Optimizer('clip', lr=1.0, clip=clip, eps=1e-5)
    metrics = _step(opt, var, lambda v: 1e6 * tf.reduce_sum(v - 1.0))
    assert float(metrics['clip_grad_norm']) == pytest.approx(1e6)
    steps[clip] = abs(float(var.numpy()[0]))
  assert steps[None] == pytest.approx(1.0, rel=1e-3)
  assert steps[1e-8] < 1e-2


def test_loss_scaling_unscales_gradients_and_halves_on_overflow():
  var = tf.Variable([1.0])
  opt = Optimizer('ls', lr=0.1, loss_scaling=True)
  # d/dv (v^2) * 2^15 is finite in float32: update applied, unscaled.
  metrics = _step(opt, var, lambda v: tf.reduce_sum(v**2))
  assert float(metrics['ls_grad_norm']) == pytest.approx(2.0)
  assert float(metrics['ls_loss_scale']) == 2.0**15
  # Overflow of the scaled gradient: skipped, scale halves.
  before = var.numpy().copy()
  metrics = _step(opt, var, lambda v: 1e35 * tf.reduce_sum(v))
  np.testing.assert_array_equal(var.numpy(), before)
  assert float(opt.loss_scale) == 2.0**14
  assert int(opt.skipped) == 1


def test_bad_lr_names_valid_range():
  with pytest.raises(ValueError, match='lr must be > 0'):
    Optimizer('x', lr=0.0)


def test_auto_precision_per_gpu_generation():
  from mummi_tf.model import precision
  assert precision.gpu_policy([(8, 0), (9, 0)]) == 'mixed_bfloat16'  # A100, H100
  assert precision.gpu_policy([(7, 0)]) == 'mixed_float16'  # V100: loss scaling
  assert precision.gpu_policy([(8, 6), (7, 5)]) == 'mixed_float16'  # the weakest decides
  assert precision.gpu_policy([None]) == 'mixed_float16'


def test_float16_training_with_loss_scaling_stays_finite_and_adapts():
  """The GPU float16 path, on this CPU at tiny sizes: finite losses, the scale adapts."""
  import gin
  import tf_keras as keras
  from model_helpers import batch, obs_spec, TINY, ACTION
  from mummi_tf.model import world_model
  keras.mixed_precision.set_global_policy('mixed_float16')
  for key, value in TINY.items():
    gin.bind_parameter(f'WorldModel.{key}', value)
  wm = world_model.WorldModel(obs_spec(), ACTION, method='dreamer')
  data = {k: tf.constant(v) for k, v in batch().items()}
  wm.build(data)
  before = [v.numpy().copy() for v in wm.model_variables]
  losses, skipped = [], []
  for _ in range(12):
    _, metrics = wm.update(data)
    losses.append(float(metrics['model_loss']))
    skipped.append(int(metrics['model_skipped']))
  # A loss of ~1.6e4 times 2^15 overflows float16: the first steps are skipped while the
  # scale halves, then steps apply.
  assert all(np.isfinite(losses))
  assert 0 < skipped[-1] < 12 and skipped[-1] == skipped[-4]  # the last steps applied
  assert float(metrics['model_loss_scale']) == 2.0**(15 - skipped[-1])
  assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, wm.model_variables))
  assert isinstance(wm.opt._opt, keras.mixed_precision.LossScaleOptimizer)
  # An overflowing step is skipped and halves the scale.
  var = tf.Variable([1.0])
  opt = Optimizer('f16', lr=0.1)
  before = float(opt.loss_scale)
  _step(opt, var, lambda v: 1e35 * tf.reduce_sum(v))
  assert float(opt.loss_scale) == before / 2 and int(opt.skipped) == 1


def test_compiled_functions_run_the_code_loaded_not_the_file_edited_since(tmp_path):
  """A run's first evaluation traces its policy thousands of steps in; AutoGraph would
  re-read the source then and run (or fail on) edits made since the run started.
  `compile_fn` traces the module as it was imported."""
  import importlib.util

  from mummi_tf.model import precision
  path = tmp_path / 'edited_module.py'
  path.write_text('def f(x):\n  return x + 1.0\n')
  spec = importlib.util.spec_from_file_location('edited_module', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  path.write_text('def g(x):\n  return x - 100.0\n\n\ndef f(x):\n  return x + 1.0\n')  # edited
  fn = precision.compile_fn(module.f)
  assert float(fn(tf.constant(1.0))) == 2.0
