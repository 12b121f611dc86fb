"""Times the world-model and the actor-critic parts of one update apart (random inputs).

Run from the repository root: python docs/results/scripts/time_update_parts.py METHOD
MODALITIES B T [gin bindings...] [PREC=float32], e.g. `dreamer rgb 16 50 WorldModel.cnn_depth=16`.
"""
import sys, time, json
import numpy as np

sys.path.insert(0, '.')
from bench import update_probe as up

method, mods, B, T = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3]), int(sys.argv[4])
binds = sys.argv[5:]
up.IMAGES = {k: v for k, v in {'rgb': (64, 64, 3), 'depth': (64, 64, 1)}.items() if k in mods}
up.VECTORS = {k: v for k, v in {'touch': (2,), 'state': (24,)}.items() if k in mods}
import tensorflow as tf

prec = [b for b in binds if b.startswith('PREC=')]
binds = [b for b in binds if not b.startswith('PREC=')]
agent, pol = up.build_agent(method, prec[0][5:] if prec else 'auto', False, binds)
data = {
    k: tf.constant(v)
    for k, v in up.random_batch(B, T).items()
    if k in up.obs_spec() or k in ('action', 'reward', 'discount', 'is_first')
}
wm = tf.function(lambda d: agent.world_model.update(d))
post, _ = wm(data)
ac = tf.function(lambda p: agent.behavior.update(agent.world_model, p))
ac(post)


def t(f, x, n=4):
  ts = []
  for _ in range(n):
    s = time.perf_counter()
    tf.nest.map_structure(lambda y: y.numpy(), f(x))
    ts.append(time.perf_counter() - s)
  return float(np.median(ts))


print(
    json.dumps({
        'method': method,
        'mods': mods,
        'B': B,
        'T': T,
        'binds': binds,
        'wm_s': t(wm, data),
        'ac_s': t(ac, post)
    }), flush=True)
