"""`mummi_tf.envs.make`: task lookup, bad input, gin, and the worker-process proxy.

Envs made here run in worker processes (the default), so this pytest process never renders.
Touch-only envs skip rendering entirely and are used where images are not needed.
"""
import time

import gin
import numpy as np
import pytest

import mummi_tf.envs as envs
from envs_helpers import run_isolated
from mummi_tf.envs import worker


def test_tasks_listed():
  assert set(envs.SUITES['dmc']) <= set(envs.TASKS)
  from mummi_tf.envs import dmc  # no rendering: import only
  assert dmc.TASKS == envs.SUITES['dmc']


def test_unknown_task_and_modality():
  with pytest.raises(ValueError, match='unknown task .*valid: walker_stand, walker_walk'):
    envs.make('walker_fly', process=False)
  with pytest.raises(ValueError, match='valid: rgb, depth, touch'):
    envs.make('walker_walk', modalities=('smell',), process=False)
  with pytest.raises(ValueError, match=r'outside \[0, 1\)'):
    envs.make('walker_walk', missing=1.0, process=False)


def test_worker_episode_touch_only():
  env = envs.make('walker_walk', modalities=('touch',), seed=0, missing='high', time_limit=40)
  try:
    assert set(env.observation_spec()) == {'touch', 'touch_flag', 'state'}
    ts, flags, n = env.reset(), [], 0
    while not ts.last():
      flags.append(float(ts.observation['touch_flag']))
      ts = env.step(np.ones(6, np.float32))
      n += 1
    assert n == 20  # 40 env steps at action repeat 2
    assert ts.discount == 1.0 and ts.observation['touch'].dtype == np.float32
    assert env.get_attr('last_fraction')['touch'] == pytest.approx(0.75, abs=0.03)
  finally:
    env.close()
  assert env._proc.poll() is not None, 'close() did not reap the worker'


def test_state_as_a_sensor_gets_a_flag_and_goes_missing():
  """gin/state.gin's modality: the proprioceptive state, a sensor like any other."""
  env = envs.make('walker_stand', modalities=('state',), seed=0, missing='high', time_limit=40)
  try:
    spec = env.observation_spec()
    assert set(spec) == {'state', 'state_flag'} and spec['state'].shape == (24,)
    ts, zeros = env.reset(), 0
    while not ts.last():
      ts = env.step(np.zeros(6, np.float32))
      flag, state = float(ts.observation['state_flag']), ts.observation['state']
      assert (flag == 0) == (not state.any())
      zeros += flag == 0
    assert zeros > 0 and env.get_attr('last_fraction')['state'] == pytest.approx(0.75, abs=0.03)
  finally:
    env.close()


def test_async_steps_two_workers_in_parallel():
  kw = dict(modalities=('rgb',), shadows=True, missing='none')
  a, b = envs.make('cup_catch', seed=1, **kw), envs.make('cup_catch', seed=2, **kw)
  try:
    a.reset_async(), b.reset_async()
    first = a.reset_wait(), b.reset_wait()
    issue, total = [], []
    for _ in range(5):
      t0 = time.perf_counter()
      a.step_async(np.zeros(2)), b.step_async(np.zeros(2))
      t1 = time.perf_counter()
      ra, rb = a.step_wait(), b.step_wait()
      issue.append(t1 - t0), total.append(time.perf_counter() - t0)
    assert ra.observation['rgb'].shape == rb.observation['rgb'].shape == (64, 64, 3)
    assert not np.array_equal(first[0].observation['rgb'], first[1].observation['rgb'])
    # both workers were stepping while the parent was free to do other work
    assert np.median(issue) < 0.25 * np.median(total)
    with pytest.raises(RuntimeError, match='step_wait'):
      a.step_async(np.zeros(2))
      a.step_async(np.zeros(2))
  finally:
    a.close(), b.close()


def test_worker_exception_propagates_with_traceback():
  env = envs.make('finger_spin', modalities=('touch',), seed=0)
  try:
    env.reset()
    with pytest.raises(worker.WorkerError, match=r'(?s)in the environment worker.*'
                       r'Traceback.*Error') as info:
      env.step(np.zeros(5))  # wrong action shape
    assert isinstance(info.value, ValueError)  # dm_control's error type survives
    env.reset()  # the worker survives a failed step
    assert env.step(np.zeros(2)).observation['touch'].shape == (2,)
    env._proc.kill()
    env._proc.wait()
    with pytest.raises(worker.WorkerError, match='exited'):
      env.step(np.zeros(2))
  finally:
    env.close()
  with pytest.raises(ValueError, match='valid: rgb, depth, touch'):
    envs.make('finger_spin', modalities=('sound',))  # checked in the worker


def test_gin_defaults_reach_the_worker():
  gin.parse_config_files_and_bindings(['gin/envs_dmc.gin'], [
      "mummi_tf.envs.make.missing = 'high'", 'mummi_tf.envs.make.time_limit = 20',
      "mummi_tf.envs.make.modalities = ('touch',)", 'mummi_tf.envs.dmc.load.shadows = False'
  ])
  assert envs.suite_defaults('dmc')['shadows'] is False
  env = envs.make()  # task from gin: walker_stand
  try:
    ts, flags = env.reset(), []
    while True:
      flags.append(float(ts.observation['touch_flag']))
      if ts.last():
        break
      ts = env.step(np.zeros(6))
    assert len(flags) == 11 and 1 - np.mean(flags) == pytest.approx(0.75, abs=0.05)
  finally:
    env.close()


def test_make_after_tensorflow_import():
  facts = run_isolated("""
import json, numpy as np, tensorflow as tf
import mummi_tf.envs as envs
env = envs.make('walker_walk', seed=0, shadows=False)
ts = env.reset()
for _ in range(3):
    ts = env.step(np.zeros(6, np.float32))
print(json.dumps(dict(rgb=list(ts.observation['rgb'].shape),
                      mean=float(ts.observation['rgb'].mean()) + float(ts.observation['rgb_flag']))))
env.close()
""")
  assert facts['rgb'] == [64, 64, 3] and facts['mean'] > 0
