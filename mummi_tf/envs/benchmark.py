"""Env speed: ms per agent step of `make` vs a bare `physics.render` RGB step (for make bench).

Run in a process that has not imported TensorFlow:
    python -m mummi_tf.envs.benchmark [--steps 50] [--repeats 5] [task ...]
The bare step is what a plain dm_control loop costs: the stock suite task (no touch
sensors), `action_repeat` physics steps and one `physics.render(H, W, camera_id=0)`.
Each figure is the median over repeats, repeats of all variants interleaved.
"""
import argparse
import json
import time

import numpy as np


def _bare(task, shadows, size):
  from dm_control import suite
  from mummi_tf.envs import dmc
  domain = {'walker': 'walker', 'finger': 'finger', 'cup': 'ball_in_cup'}[task.split('_')[0]]
  env = suite.load(domain, task.split('_', 1)[1], task_kwargs={'random': 0})
  assert task in dmc.TASKS
  spec = env.action_spec()
  flags = None if shadows else {'shadow': False}

  class Bare:
    def reset(self):
      env.reset()

    def step(self, action):
      for _ in range(2):
        env.step(action)
      return env.physics.render(*size, camera_id=0, render_flag_overrides=flags)

    def close(self):
      env.close()

  return Bare(), spec.shape


def _ours(task, shadows, size, process):
  import mummi_tf.envs as envs
  env = envs.make(task, seed=0, size=size, shadows=shadows, process=process)
  return env, env.action_spec().shape


def _time(env, shape, steps, rng):
  env.reset()
  start = time.perf_counter()
  for _ in range(steps):
    env.step(rng.uniform(-1, 1, shape).astype(np.float32))
  return (time.perf_counter() - start) / steps * 1e3


def measure(task, shadows=True, steps=50, repeats=5, size=(64, 64)):
  """{'bare', 'in_process', 'worker'} -> (median, min, max) ms per agent step."""
  variants = {
      'bare': _bare(task, shadows, size),
      'in_process': _ours(task, shadows, size, False),
      'worker': _ours(task, shadows, size, True)
  }
  rng = np.random.default_rng(0)
  times = {k: [] for k in variants}
  for env, shape in variants.values():  # warm-up
    _time(env, shape, 3, rng)
  for _ in range(repeats):
    for k, (env, shape) in variants.items():
      times[k].append(_time(env, shape, steps, rng))
  for env, _ in variants.values():
    env.close()
  return {k: (float(np.median(v)), float(np.min(v)), float(np.max(v))) for k, v in times.items()}


def main():
  from mummi_tf.envs import dmc
  parser = argparse.ArgumentParser()
  parser.add_argument('tasks', nargs='*', default=list(dmc.TASKS))
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  for task in args.tasks:
    for shadows in (True, False):
      r = measure(task, shadows, args.steps, args.repeats)
      print(
          json.dumps(
              dict(task=task, shadows=shadows, **{
                  k: [round(x, 2) for x in v] for k, v in r.items()
              }, ratio_in_process=round(r['in_process'][0] / r['bare'][0], 2), ratio_worker=round(
                  r['worker'][0] / r['bare'][0], 2))), flush=True)


if __name__ == '__main__':
  main()
