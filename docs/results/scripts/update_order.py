"""Times `Agent.model_step_first` True (today's default) against False (upstream Dreamer's order)
at `small.gin`'s sizes, interleaved in one process (docs/results/2026-12-07-update-speed/).

Run from the repository root: python docs/results/scripts/update_order.py METHOD [INTRA,INTER].
Builds the agent of METHOD on a random batch (B 16 x T 50, mixed bfloat16, all 800 imagination
starts, no MPC), sets TF's thread pools (default 1,2: small.gin's), traces the whole update once
in each order, then calls them alternately, 8 rounds. Prints the median and min, seconds.
Two copies started at once with 1,1 measure the throughput of two single-thread trainings.
"""
import json
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, '.')
from bench import update_probe as up  # noqa: E402
from mummi_tf.model import precision  # noqa: E402

SMALL = ('WorldModel.cnn_depth = 16', 'WorldModel.fused = 256', 'WorldModel.expert_hidden = 256',
         'ActorCritic.starts = 0', 'ActorCritic.mpc = False')


def seconds(f, x):
  start = time.perf_counter()
  tf.nest.map_structure(lambda y: y.numpy(), f(x))
  return time.perf_counter() - start


def main(method, pools='1,2'):
  precision.set_threads(*map(int, pools.split(',')))
  agent, _ = up.build_agent(method, 'auto', False, SMALL)
  data = {k: tf.constant(v) for k, v in up.random_batch(16, 50).items()}
  orders = {}
  for first in (True, False):  # the order is read when the update is traced
    agent.model_step_first = first
    orders[f'model_step_first={first}'] = f = tf.function(agent._update, autograph=False)
    seconds(f, data)
    seconds(f, data)
  times = {name: [] for name in orders}
  for _ in range(8):
    for name, f in orders.items():
      times[name].append(seconds(f, data))
  print(
      json.dumps({
          'method': method,
          'pools': pools,
          **{
              k: [round(float(np.median(v)), 4),
                  round(float(np.min(v)), 4)] for k, v in times.items()
          }
      }))


if __name__ == '__main__':
  main(*sys.argv[1:])
