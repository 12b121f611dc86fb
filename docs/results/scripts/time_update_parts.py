"""Times the world-model and the actor-critic parts of one update apart (random inputs).

Run from the repository root: python docs/results/scripts/time_update_parts.py METHOD
MODALITIES B T [gin bindings...] [PREC=float32], e.g. `dreamer rgb 16 50 WorldModel.cnn_depth=16`.
"""
import json
import sys
import time

import numpy as np

sys.path.insert(0, '.')
from bench import update_probe as up  # noqa: E402


def build(argv):
  """(wm, data, ac, post, binds): the two parts of one update as tf.functions, traced once, on
  a random batch, for argv = METHOD MODALITIES B T [bindings...] [PREC=...]."""
  method, mods, B, T = argv[0], argv[1].split(','), int(argv[2]), int(argv[3])
  up.IMAGES = {k: v for k, v in {'rgb': (64, 64, 3), 'depth': (64, 64, 1)}.items() if k in mods}
  up.VECTORS = {k: v for k, v in {'touch': (2,), 'state': (24,)}.items() if k in mods}
  import tensorflow as tf
  prec = [b for b in argv[4:] if b.startswith('PREC=')]
  binds = [b for b in argv[4:] if not b.startswith('PREC=')]
  agent, _ = up.build_agent(method, prec[0][5:] if prec else 'auto', False, binds)
  data = {
      k: tf.constant(v)
      for k, v in up.random_batch(B, T).items()
      if k in up.obs_spec() or k in ('action', 'reward', 'discount', 'is_first')
  }
  wm = tf.function(lambda d: agent.world_model.update(d))
  post, _ = wm(data)
  ac = tf.function(lambda p: agent.behavior.update(agent.world_model, p))
  ac(post)
  return wm, data, ac, post, binds


def run(f, x):
  import tensorflow as tf
  tf.nest.map_structure(lambda y: y.numpy(), f(x))


def seconds(f, x, n=4):
  """Median wall time of ``n`` calls."""
  times = []
  for _ in range(n):
    start = time.perf_counter()
    run(f, x)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


if __name__ == '__main__':
  wm, data, ac, post, binds = build(sys.argv[1:])
  print(
      json.dumps({
          'method': sys.argv[1],
          'mods': sys.argv[2].split(','),
          'B': int(sys.argv[3]),
          'T': int(sys.argv[4]),
          'binds': binds,
          'wm_s': seconds(wm, data),
          'ac_s': seconds(ac, post)
      }), flush=True)
