#!/usr/bin/env python
"""Drive a task's environment in closed loop with an exported SavedModel.

    mummi-run-savedmodel --model LOGDIR/savedmodel [--drop rgb] [--drop_at 100]
        [--episodes 1] [--seed 0]
    mummi-run-savedmodel --model LOGDIR/savedmodel --bench 200

The policy needs only TensorFlow: ``tf.saved_model.load`` and ``metadata.json``. The
environment comes from ``mummi_tf.envs.make`` (its own TF-free worker process) with
no missing data of its own; this script drops the sensor ``--drop`` from agent step
``--drop_at`` to the end of each episode by zeroing it and setting its flag to 0,
the way a robot's broken sensor is reported to the policy. ``--bench N`` instead
times N policy steps at batch 1 on random inputs and prints the median latency.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

from mummi_tf.cli import import_tensorflow_quietly

import_tensorflow_quietly()  # before TF loads: no C++ start-up banner
import tensorflow as tf  # noqa: E402


def load(model_dir):
  model_dir = pathlib.Path(model_dir)
  meta_path = model_dir / 'metadata.json'
  if not meta_path.is_file():
    raise SystemExit(f'run_savedmodel: error: {meta_path} not found; pass the '
                     '--out folder of tools/export_savedmodel.py.')
  return tf.saved_model.load(str(model_dir)), json.loads(meta_path.read_text())


def random_inputs(meta, rng):
  obs = {}
  for m, spec in meta['modalities'].items():
    shape = [1] + spec['shape']
    if spec['dtype'] == 'uint8':
      obs[m] = tf.constant(rng.integers(0, 256, shape, np.uint8))
    else:
      obs[m] = tf.constant(rng.normal(size=shape).astype(np.float32))
  flags = {m: tf.ones([1], tf.float32) for m in meta['modalities']}
  return obs, flags


def bench(model, meta, steps):
  """Median and 90th-percentile latency (ms) of ``step`` at batch 1, and the
  process CPU time per step (ms; all threads), a load-independent cost."""
  rng = np.random.default_rng(0)
  obs, flags = random_inputs(meta, rng)
  state = model.initial_state(tf.constant(1))
  first = tf.constant([False])
  for _ in range(10):  # Warm-up.
    _, state = model.step(obs, flags, state, first)
  times = []
  cpu = time.process_time()
  for _ in range(steps):
    start = time.perf_counter()
    action, state = model.step(obs, flags, state, first)
    action.numpy()
    times.append(1e3 * (time.perf_counter() - start))
  cpu = 1e3 * (time.process_time() - cpu) / steps
  return float(np.median(times)), float(np.percentile(times, 90)), cpu


def run_episode(model, meta, env, drop, drop_at):
  names = sorted(meta['modalities'])
  timestep = env.reset()
  state = model.initial_state(tf.constant(1))
  first, total, step = True, 0.0, 0
  while not timestep.last():
    obs, flags = {}, {}
    for m in names:
      x = np.asarray(timestep.observation[m])
      flag = float(timestep.observation.get(f'{m}_flag', 1.0))
      if m == drop and step >= drop_at:
        x, flag = np.zeros_like(x), 0.0
      obs[m] = tf.constant(x[None])
      flags[m] = tf.constant([flag], tf.float32)
    action, state = model.step(obs, flags, state, tf.constant([first]))
    timestep = env.step(action.numpy()[0])
    total += float(timestep.reward or 0.0)
    first, step = False, step + 1
  return total, step


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
  parser.add_argument('--model', required=True, help='exported SavedModel folder')
  parser.add_argument('--episodes', type=int, default=1)
  parser.add_argument('--drop', default=None, help='modality to drop mid-episode')
  parser.add_argument(
      '--drop_at', type=int, default=None,
      help='agent step of the drop (default 250: half of a paper '
      'episode, 1000 env steps at action repeat 2)')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--bench', type=int, default=0,
                      help='time this many steps at batch 1 instead of running')
  args = parser.parse_args(argv)
  model, meta = load(args.model)
  if args.drop is not None and args.drop not in meta['modalities']:
    print(
        f'run_savedmodel: error: --drop {args.drop!r} is not a modality of the '
        f'model; valid: {", ".join(sorted(meta["modalities"]))}', file=sys.stderr)
    return 2
  if args.bench:
    median, p90, cpu = bench(model, meta, args.bench)
    print(f'step latency at batch 1: median {median:.2f} ms, p90 {p90:.2f} ms, '
          f'CPU time {cpu:.2f} ms/step (mpc={meta["mpc"]})')
    return 0
  from mummi_tf import envs  # TF-free; the environment runs in a worker process.
  env = envs.make(meta['task'], modalities=sorted(meta['modalities']), missing='none',
                  seed=args.seed)
  try:
    for episode in range(args.episodes):
      drop_at = 250 if args.drop_at is None else args.drop_at
      total, steps = run_episode(model, meta, env, args.drop, drop_at)
      dropped = f', {args.drop} dropped from step {drop_at}' if args.drop else ''
      print(f'episode {episode}: return {total:.1f} over {steps} agent steps'
            f'{dropped}')
  finally:
    env.close()
  return 0


if __name__ == '__main__':
  sys.exit(main())
