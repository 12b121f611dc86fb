"""Times one compiled world-model update per method and precision (issue 3, Speed).

Usage::

    python -m mummi_tf.model_bench --batch 50 --length 50 \
        --methods mummi,dreamer --precisions float32,mixed_bfloat16 [--jit]

Paper dims: rgb 64x64x3, depth 64x64x1, touch (2,), h 200, s^c 30, s^f 1024.
Prints one line per (method, precision): parameters, first-call seconds (trace and
compile) and the median seconds of the following steps.
"""
import argparse
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mummi_tf import precision
from mummi_tf.world_model import METHODS, WorldModel

SPEC = {'rgb': ((64, 64, 3), np.uint8), 'depth': ((64, 64, 1), np.uint8),
        'touch': ((2,), np.float32), 'rgb_flag': ((), np.float32),
        'depth_flag': ((), np.float32), 'touch_flag': ((), np.float32)}


def random_batch(batch, length, action_size, seed=0):
  rng = np.random.default_rng(seed)
  data = {}
  for name, (shape, dtype) in SPEC.items():
    full = (batch, length) + shape
    if dtype == np.uint8:
      data[name] = rng.integers(0, 256, full, dtype=np.uint8)
    elif name.endswith('_flag'):
      data[name] = (rng.random(full) > 0.375).astype(np.float32)
    else:
      data[name] = rng.normal(size=full).astype(np.float32)
  data['action'] = rng.uniform(-1, 1, (batch, length, action_size)).astype(np.float32)
  data['reward'] = rng.normal(size=(batch, length)).astype(np.float32)
  data['is_first'] = np.zeros((batch, length), bool)
  return {k: tf.constant(v) for k, v in data.items()}


def time_method(method, policy, batch, length, steps, jit):
  keras.mixed_precision.set_global_policy(precision.resolve_policy(policy))
  wm = WorldModel(SPEC, 6, method=method)
  data = random_batch(batch, length, 6)
  wm.build(data)
  fn = tf.function(wm.update, jit_compile=jit)
  start = time.perf_counter()
  _, metrics = fn(data)
  float(metrics['model_loss'])
  first = time.perf_counter() - start
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    _, metrics = fn(data)
    float(metrics['model_loss'])
    times.append(time.perf_counter() - start)
  params = sum(int(np.prod(v.shape)) for v in wm.model_variables)
  keras.mixed_precision.set_global_policy('float32')
  return params, first, float(np.median(times)), float(metrics['model_loss'])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=50)
  parser.add_argument('--length', type=int, default=50)
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--methods', default=','.join(METHODS))
  parser.add_argument('--precisions', default='float32,auto')
  parser.add_argument('--jit', action='store_true')
  args = parser.parse_args()
  for policy in args.precisions.split(','):
    for method in args.methods.split(','):
      params, first, step, loss = time_method(
          method, policy, args.batch, args.length, args.steps, args.jit)
      print(f'{method:8s} {precision.resolve_policy(policy):15s} jit={args.jit} '
            f'B={args.batch} T={args.length} params={params / 1e6:.2f}M '
            f'first={first:.1f}s step={step:.3f}s loss={loss:.1f}', flush=True)


if __name__ == '__main__':
  main()
