"""Figure 5: replay RAM per stored step vs the raw bytes of its arrays (capacity honoured),
and replay sampling throughput vs what the train step consumes."""
import ctypes
import pathlib
import tempfile
import time

import numpy as np

from bench import report
from bench import runner
from bench.update_probe import ACTION_SIZE, obs_spec

RAM_GOAL = ('ratio_max', 1.1)
SAMPLING_GOAL = ('ratio_min', 3.0)


def episode(length, seed):
  """One random episode of the Natural MuJoCo layout (docs/ARCHITECTURE.md), T+1 steps."""
  rng = np.random.default_rng(seed)
  ep = {}
  for name, spec in obs_spec().items():
    shape = (length,) + spec.shape
    ep[name] = (
        rng.integers(0, 256, shape, np.uint8) if spec.dtype == np.uint8 else rng.random(
            shape, np.float32))
  ep['state'] = rng.random((length, 24), np.float32)
  ep['action'] = rng.uniform(-1, 1, (length, ACTION_SIZE)).astype(np.float32)
  ep['reward'] = rng.random(length, np.float32)
  ep['discount'] = np.ones(length, np.float32)
  ep['is_first'] = np.zeros(length, bool)
  ep['is_first'][0] = True
  return ep


def _rss():
  """Resident bytes of this process after returning freed heap pages to the OS (glibc's
  malloc_trim), so transient buffers (the npz writer's) do not count as held."""
  try:
    ctypes.CDLL('libc.so.6').malloc_trim(0)
  except (OSError, AttributeError):
    pass
  for line in pathlib.Path('/proc/self/status').read_text().splitlines():
    if line.startswith('VmRSS'):
      return int(line.split()[1]) * 1024
  raise OSError('no VmRSS in /proc/self/status')


def fill_once(capacity_episodes, length, seed):
  """RSS growth per step held of one Replay given 2x its capacity (call in a fresh process)."""
  from mummi_tf.run import replay as replay_lib
  capacity = capacity_episodes * length
  with tempfile.TemporaryDirectory() as tmp:
    replay_lib.save_episode(pathlib.Path(tmp) / 'warmup', episode(length, 10**6 + seed))
    start = _rss()  # after the lazy imports and buffers of a first save
    replay = replay_lib.Replay(pathlib.Path(tmp) / 'episodes', capacity=capacity, seed=seed)
    for i in range(2 * capacity_episodes):
      replay.add(episode(length, 1000 * seed + i))  # our reference dies here
    return {
        'per_step': (_rss() - start) / replay.num_steps,
        'held': replay.num_steps,
        'capacity': capacity
    }


def ram(capacity_episodes, length, repeats, timeout):
  """Figure 5a: one fresh TF-free process per repeat (freed heap would hide the growth)."""
  raw = sum(v.nbytes for v in episode(length, 0).values()) / length
  runs, errors = [], []
  for rep in range(repeats):
    results, error = runner.run(['-m', 'bench.figures_replay', capacity_episodes, length, rep],
                                timeout)
    runs += results
    if not results:
      errors.append(error or 'no result')
  name, unit = 'replay/ram_per_step', 'bytes/step'
  if not runs:
    return report.failed(name, unit, RAM_GOAL, errors[0])
  honoured = all(r['held'] <= r['capacity'] for r in runs)
  entry = report.figure(
      name, [r['per_step'] for r in runs], unit, baseline=raw, goal=RAM_GOAL,
      notes=f'RSS growth of a fresh process over one Replay given 2x its capacity '
      f'({runs[0]["capacity"]} steps = {capacity_episodes} episodes of {length} steps), '
      'per step held, vs the raw nbytes of one step (rgb, depth, touch, flags, state, '
      f'action, reward, discount, is_first); capacity honoured: {honoured} (steps '
      f'held {[r["held"] for r in runs]})', capacity_honoured=bool(honoured))
  entry['met'] = bool(entry['met'] and honoured)
  return entry


def sampling(batch, length, seconds, repeats, consumed, consumed_note):
  """Sequences/s of Replay.sample and of Replay.dataset (tf.data), repeats interleaved."""
  from mummi_tf.run import replay as replay_lib
  with tempfile.TemporaryDirectory() as tmp:
    replay = replay_lib.Replay(pathlib.Path(tmp) / 'episodes', seed=0)
    for i in range(8):
      replay._store(f'ep{i}', episode(max(501, length + 1), i))  # RAM only: no disk time
    dataset = iter(replay.dataset(batch, length))
    next(dataset)
    direct, pipeline = [], []
    for _ in range(repeats):
      direct.append(_rate(lambda: replay.sample(batch, length), batch, seconds))
      pipeline.append(_rate(lambda: next(dataset), batch, seconds))
  return report.figure(
      'replay/sampling', pipeline, 'sequences/s', baseline=consumed, goal=SAMPLING_GOAL,
      notes=f'Replay.dataset (tf.data from_generator, prefetch 2) batches of {batch} x '
      f'{length}, vs {consumed_note}; Replay.sample alone: median '
      f'{np.median(direct):.0f} sequences/s', direct_samples=direct)


def _rate(fn, batch, seconds):
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    fn()
    count += batch
  return count / (time.perf_counter() - start)


if __name__ == '__main__':
  import json
  import sys
  print('RESULT ' + json.dumps(fill_once(*(int(a) for a in sys.argv[1:4]))), flush=True)
