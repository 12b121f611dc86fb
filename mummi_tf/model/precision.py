"""Mixed precision, thread pools and compilation options.

Public API::

    set_policy(precision='auto') -> str       # gin-configurable; returns the policy set
    set_threads(intra_op=0, inter_op=0) -> bool  # gin-configurable; TF's thread pools
    threads_label() -> str                    # 'threads 1/op, 2 ops' ('' for TF's default)
    resolve_policy(precision) -> str          # 'auto' -> per-device choice, validated
    gpu_policy(capabilities) -> str           # 'auto' on GPUs of these compute capabilities
    compile_fn(fn, jit_compile=False)         # gin-configurable tf.function wrapper

'auto' picks ``mixed_bfloat16`` on CPU (measured ~1.3x faster than float32 for a
Dreamer-sized step; float16 convolutions on CPU are unusably slow) and on GPUs of compute
capability >= 8.0, and ``mixed_float16`` on older GPUs (tensor cores; ``optim.Optimizer``
then scales the loss with tf-keras's ``LossScaleOptimizer``).
Call ``set_policy`` once, before any model is built: Keras layers read the global
policy when they are created.  Distribution parameters, KL terms and InfoNCE logits
are cast to float32 by the model regardless of the policy.
"""
import sys

import gin
import tensorflow as tf
import tf_keras as keras

POLICIES = ('auto', 'float32', 'mixed_bfloat16', 'mixed_float16')


def resolve_policy(precision):
  """Returns the concrete Keras policy name for ``precision``."""
  if precision not in POLICIES:
    raise ValueError(f'precision must be one of {", ".join(POLICIES)}; got {precision!r}.')
  if precision != 'auto':
    return precision
  gpus = tf.config.list_physical_devices('GPU')
  if gpus:
    return gpu_policy([
        tf.config.experimental.get_device_details(g).get('compute_capability') for g in gpus
    ])
  return 'mixed_bfloat16'


def gpu_policy(capabilities):
  """'auto' on GPUs of these compute capabilities ((major, minor) or None): bfloat16 when
  every one has bfloat16 tensor cores (>= 8.0, Ampere on; no loss scaling needed), else
  float16 with loss scaling (``optim.Optimizer`` wraps Adam in tf-keras's
  ``LossScaleOptimizer``)."""
  if capabilities and all(c is not None and tuple(c) >= (8, 0) for c in capabilities):
    return 'mixed_bfloat16'
  return 'mixed_float16'


@gin.configurable
def set_policy(precision='auto'):
  """Sets the global Keras mixed-precision policy; returns its name."""
  name = resolve_policy(precision)
  keras.mixed_precision.set_global_policy(name)
  return name


@gin.configurable
def set_threads(intra_op=0, inter_op=0):
  """Sizes TF's thread pools: ``intra_op`` threads inside one op (a matmul's blocks),
  ``inter_op`` ops run side by side; 0 keeps TF's default (one thread per core in each).

  Must run before TensorFlow executes its first op (the trainer calls it first); later, a
  setting that differs from the current one is reported and ignored. Returns whether the
  pools are as asked. On the 2-core CPU, ``intra_op=1, inter_op=2`` (``small.gin``) made the
  update of ``mummi small`` 1.11x and ``dreamer small`` 1.09x faster (docs/performance.md): an
  update's ops are small (800-row matmuls, elementwise chains) and gain more from running
  independent ops — the backward pass's two matmuls per layer, the modalities' encoders — side
  by side than from splitting each op across cores.
  """
  want = {'intra_op': int(intra_op), 'inter_op': int(inter_op)}
  have = {
      'intra_op': tf.config.threading.get_intra_op_parallelism_threads(),
      'inter_op': tf.config.threading.get_inter_op_parallelism_threads()
  }
  change = {k: v for k, v in want.items() if v and v != have[k]}
  try:
    if 'intra_op' in change:
      tf.config.threading.set_intra_op_parallelism_threads(change['intra_op'])
    if 'inter_op' in change:
      tf.config.threading.set_inter_op_parallelism_threads(change['inter_op'])
  except RuntimeError:  # TF already runs ops (a second trainer in one process)
    print(f'warning: set_threads({want}) ignored: TensorFlow already runs with {have}',
          file=sys.stderr)
    return False
  return True


def threads_label():
  """The pools TF runs with, for a run's summary line; '' when both are TF's default."""
  intra = tf.config.threading.get_intra_op_parallelism_threads()
  inter = tf.config.threading.get_inter_op_parallelism_threads()
  if not (intra or inter):
    return ''
  return f'threads {intra or "default"}/op, {inter or "default"} ops'


@gin.configurable
def compile_fn(fn, jit_compile=False):
  """``tf.function(fn)``, XLA-compiled when ``jit_compile`` (gin) is true.

  On this CPU XLA made the whole update ~1.9x slower (docs/performance.md): off by default.
  Without AutoGraph (the code's control flow is Python on static values, tf.cond / tf.while
  where it depends on tensors): AutoGraph re-reads a function's source file when it traces,
  so a run that traces later (its first evaluation) would execute source edited after it
  started — or fail on it.
  """
  return tf.function(fn, jit_compile=bool(jit_compile), autograph=False)
