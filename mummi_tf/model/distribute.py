"""Data-parallel updates on several devices, and noise that does not depend on the split.

Public API::

    resolve_devices(devices, batch_size) -> ['GPU:0', ...]  # Trainer.devices, checked
    devices_label(devices) -> 'CPU' | '1 GPU' | 'N replicas (…)'
    strategy_for(devices) -> MirroredStrategy or None   # None: one device, the plain path
    replicas() -> int                  # replicas in sync here (1 outside a replica context)
    local_rows(batch) -> batch         # this replica's rows of a global (B, ...) batch
    all_mean(value) -> value           # mean over replicas (identity on one)
    denominator(count) -> count        # max(count, 1), of the global batch
    global_value(x) -> x               # the global batch's value, this replica's gradient
    gather_rows(x) -> (X, offset)      # every replica's rows; where this replica's begin
    cross_replica(fn)                  # fn() once for all replicas (merge_call)
    reduce_metrics(strategy, metrics)  # per-replica scalars -> their mean
    keyed_noise(seed, counter)         # context: the sampling below becomes stateless
    normal(shape, axis=0), uniform(shape, axis=0)

A replica computes its loss as the mean over its own rows (or, for a masked mean,
its rows' sum over the global count divided by the replica count), so the mean of
the replicas' gradients is the gradient of the global batch; ``optim.Optimizer``
all-reduces gradients before clipping and the non-finite check.  With one device none
of these functions adds an op: ``normal`` and ``uniform`` are ``tf.random.normal`` and
``tf.random.uniform`` unless ``keyed_noise`` is active.

Keyed noise draws ``tf.random.stateless_*`` for the global batch, keyed on (seed,
counter, call index in the traced update), and each replica takes its own rows along
``axis``: row i gets the same noise however the batch is split.
"""
import contextlib
import threading

import tensorflow as tf

_local = threading.local()  # Keyed-noise state per replica thread (MirroredStrategy).


def strategy_for(devices):
  """A ``MirroredStrategy`` over ``devices`` when there are several, else None."""
  devices = list(devices)
  if len(devices) < 2:
    return None
  return tf.distribute.MirroredStrategy(devices)


def _context():
  """The replica context of a multi-replica update, else None."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync < 2:
    return None
  return ctx


def _index(ctx):
  """This replica's index, a python int where TF knows it statically (static shapes)."""
  index = tf.get_static_value(ctx.replica_id_in_sync_group)
  return ctx.replica_id_in_sync_group if index is None else int(index)


def replicas():
  """Replicas in sync in the current replica context (1 in a cross-replica context)."""
  ctx = _context()
  return ctx.num_replicas_in_sync if ctx else 1


def local_rows(batch):
  """This replica's contiguous rows of a dict of (B, ...) tensors; B must divide."""
  ctx = _context()
  if ctx is None:
    return batch
  count = ctx.num_replicas_in_sync
  out = {}
  for key, value in batch.items():
    value = tf.convert_to_tensor(value)
    rows = value.shape[0]
    if rows is None or rows % count:
      raise ValueError(f'batch {key!r}: {rows} rows do not split over {count} replicas; '
                       'Trainer.batch_size must be a multiple of the device count.')
    size = rows // count
    start = _index(ctx) * size
    out[key] = value[start:start + size]
  return out


def all_mean(value):
  """The mean over replicas of a nest of tensors (identity on one replica)."""
  ctx = _context()
  if ctx is None:
    return value
  return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def denominator(count):
  """The divisor of a masked mean, ``max(count, 1)``, for the global batch.

  On R replicas: the global count over R, so that the mean over replicas of
  ``local_sum / denominator(local_count)`` is the global masked mean.
  """
  ctx = _context()
  if ctx is None:
    return tf.maximum(count, 1.0)
  total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(count))
  return tf.maximum(total, 1.0) / ctx.num_replicas_in_sync


def global_value(x):
  """``x``'s mean over replicas as the value, this replica's ``x`` for the gradient
  (a clamp such as free nats then decides on the global batch)."""
  ctx = _context()
  if ctx is None:
    return x
  mean = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, tf.stop_gradient(x))
  return x + tf.stop_gradient(mean - x)


def gather_rows(x):
  """Every replica's rows of ``x`` (N, ...) in replica order, and the offset of this
  replica's rows; gradients flow back to each replica's own rows."""
  ctx = _context()
  if ctx is None:
    return x, 0
  return ctx.all_gather(x, 0), _index(ctx) * tf.shape(x)[0]


def cross_replica(fn):
  """Runs ``fn()`` once for all replicas (a ``merge_call``; on one device, just ``fn()``)."""
  ctx = _context()
  if ctx is None:
    return fn()
  return ctx.merge_call(lambda strategy: fn())


def reduce_metrics(strategy, metrics):
  """Per-replica scalar metrics -> their mean (floats) or the first replica's (counts)."""
  out = {}
  for key, value in metrics.items():
    first = strategy.experimental_local_results(value)[0]
    if first.dtype.is_floating:
      out[key] = strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
    else:
      out[key] = tf.identity(first)
  return out


class _Keys:
  def __init__(self, seed, counter):
    self.base = tf.random.experimental.stateless_fold_in(
        tf.constant([int(seed), 0], tf.int64), tf.cast(counter, tf.int64))
    self.calls = 0


@contextlib.contextmanager
def keyed_noise(seed, counter):
  """Within (at trace time), ``normal`` and ``uniform`` draw stateless numbers keyed on
  (``seed``, ``counter``, call index), for the global batch; see the module docstring."""
  previous = getattr(_local, 'keys', None)
  _local.keys = _Keys(seed, counter)
  try:
    yield
  finally:
    _local.keys = previous


def _keyed(draw, shape, axis):
  keys = _local.keys
  keys.calls += 1
  seed = tf.random.experimental.stateless_fold_in(keys.base, keys.calls)
  shape = tf.convert_to_tensor(shape, tf.int32)
  ctx = _context()
  if ctx is None:
    return draw(shape, seed=seed)
  size = shape[axis]
  full = tf.tensor_scatter_nd_update(shape, [[axis]], [size * ctx.num_replicas_in_sync])
  rows = tf.range(size) + _index(ctx) * size
  return tf.gather(draw(full, seed=seed), rows, axis=axis)


def normal(shape, axis=0):
  """Standard normal float32 noise of ``shape``; ``axis`` is the one split over replicas."""
  if getattr(_local, 'keys', None) is None:
    return tf.random.normal(shape)
  return _keyed(tf.random.stateless_normal, shape, axis)


def uniform(shape, axis=0):
  """Uniform [0, 1) float32 noise of ``shape``; ``axis`` is the one split over replicas."""
  if getattr(_local, 'keys', None) is None:
    return tf.random.uniform(shape)
  return _keyed(tf.random.stateless_uniform, shape, axis)


def keyed():
  """Whether ``keyed_noise`` is active (in this thread)."""
  return getattr(_local, 'keys', None) is not None


def resolve_devices(devices, batch_size):
  """The devices of the update, as ``GPU:0``-style names: ``Trainer.devices`` as given, or
  (None) every visible GPU, else the CPU. ``batch_size`` must split evenly over them; one
  device must be the process's default (``CUDA_VISIBLE_DEVICES`` picks the GPU)."""
  if devices is None:
    devices = [d.name for d in tf.config.list_logical_devices('GPU')] or ['CPU:0']
  devices = [_short(d) for d in ([devices] if isinstance(devices, str) else devices)]
  if not devices:
    raise ValueError('Trainer.devices must name at least one device (None: every GPU).')
  if len(set(devices)) < len(devices):
    raise ValueError(f'Trainer.devices names a device twice: {devices}.')
  if len(devices) == 1:
    gpus = tf.config.list_logical_devices('GPU')
    default = 'GPU:0' if gpus else 'CPU:0'
    if devices[0] != default:
      raise ValueError(f'Trainer.devices = {devices}: one device must be the default one '
                       f'({default}); select a GPU with CUDA_VISIBLE_DEVICES.')
  if batch_size % len(devices):
    raise ValueError(f'Trainer.batch_size {batch_size} does not split over {len(devices)} '
                     'devices; use a multiple of the device count.')
  return devices


def _short(device):
  spec = tf.DeviceSpec.from_string(str(device))
  if spec.device_type is None:
    raise ValueError(f'Trainer.devices: {device!r} is not a device name such as GPU:0.')
  return f'{spec.device_type.upper()}:{spec.device_index or 0}'


def devices_label(devices):
  """The summary line's device field: 'CPU', '1 GPU' or 'N replicas (GPU:0, GPU:1)'."""
  if len(devices) > 1:
    return f'{len(devices)} replicas ({", ".join(devices)})'
  return 'CPU' if devices[0].startswith('CPU') else '1 GPU'
