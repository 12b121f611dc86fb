"""Times candidate speed-ups of the update at `small.gin` sizes against the code as it is, in
one process, interleaved (docs/results/2026-12-07-update-speed.md).

Run from the repository root: python docs/results/scripts/update_candidates.py METHOD
[INTRA,INTER]. Builds the agent of METHOD with small.gin's sizes on a random batch (B 16 x T 50,
mixed bfloat16), then times, 6 rounds interleaved: the world-model update as it is (`wm`), with
the RSSM's observe scan unrolled into a Python loop over T (`wm_unrolled`), the actor-critic
update as it is (`ac`) and XLA-compiled (`ac_xla`). INTRA,INTER sets TF's thread pools first.
Prints the median and min of each, seconds.
"""
import json
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, '.')
from bench import update_probe as up  # noqa: E402
from mummi_tf.model import mssm  # noqa: E402
from mummi_tf.model import precision  # noqa: E402

SMALL = ('WorldModel.cnn_depth = 16', 'WorldModel.fused = 256', 'WorldModel.expert_hidden = 256',
         'ActorCritic.starts = 0', 'ActorCritic.mpc = False')


def unrolled_scan(fn, elems, initializer):
  """tf.scan's result from a Python loop over the static leading axis."""
  carry, outputs = initializer, []
  for t in range(tf.nest.flatten(elems)[0].shape[0]):
    carry = fn(carry, tf.nest.map_structure(lambda e, t=t: e[t], elems))
    outputs.append(carry)
  return tf.nest.map_structure(lambda *xs: tf.stack(xs, 0), *outputs)


def seconds(f, x):
  start = time.perf_counter()
  tf.nest.map_structure(lambda y: y.numpy(), f(x))
  return time.perf_counter() - start


def main(method, pools=None):
  if pools:
    precision.set_threads(*map(int, pools.split(',')))
  agent, _ = up.build_agent(method, 'auto', False, SMALL)
  data = {k: tf.constant(v) for k, v in up.random_batch(16, 50).items()}
  update = lambda d: agent.world_model.update(d)
  parts = {'wm': tf.function(update, autograph=False)}
  post, _ = parts['wm'](data)
  scan, mssm.tf.scan = mssm.tf.scan, unrolled_scan
  parts['wm_unrolled'] = tf.function(update, autograph=False)
  parts['wm_unrolled'](data)
  mssm.tf.scan = scan
  behave = lambda p: agent.behavior.update(agent.world_model, p)
  parts['ac'] = tf.function(behave, autograph=False)
  parts['ac_xla'] = tf.function(behave, autograph=False, jit_compile=True)
  inputs = {'wm': data, 'wm_unrolled': data, 'ac': post, 'ac_xla': post}
  for name, f in parts.items():
    seconds(f, inputs[name])  # traces (and compiles)
  times = {name: [] for name in parts}
  for _ in range(6):
    for name, f in parts.items():
      times[name].append(seconds(f, inputs[name]))
  print(
      json.dumps({
          'method': method,
          'pools': pools or 'default',
          **{
              k: [round(float(np.median(v)), 4),
                  round(float(np.min(v)), 4)] for k, v in times.items()
          }
      }))


if __name__ == '__main__':
  main(*sys.argv[1:])
