"""The collection driver with real environment worker processes (the toy 2-D world)."""

import logging
import os
import signal

import numpy as np
import pytest

from mummi_tf.run import driver as driver_lib
from mummi_tf import envs as envs_lib
from mummi_tf.envs.worker import WorkerDied

TASK = 'toy2d_x_y'
LIMIT = 40  # env steps per episode = 20 agent steps with action repeat 2


def make_env(seed):
  return envs_lib.make(TASK, seed=seed, time_limit=LIMIT, missing='none')


def kill_worker(env):
  os.kill(env._proc.pid, signal.SIGKILL)
  env._proc.wait()


def test_collects_whole_episodes_with_the_reset_contract():
  env = make_env(0)
  try:
    finished = []
    runner = driver_lib.Driver([env], [lambda ep, i: finished.append(ep)])
    policy = driver_lib.random_policy(env.action_spec(), seed=0)
    steps, episodes = runner(policy, episodes=2)
    assert episodes == 2 and steps == 2 * LIMIT // 2
    for ep in finished:
      assert len(ep['reward']) == LIMIT // 2 + 1
      assert ep['is_first'][0] and not ep['is_first'][1:].any()
      assert not ep['action'][0].any() and ep['reward'][0] == 0.0
  finally:
    env.close()


def test_a_dead_worker_is_replaced_and_its_unfinished_episode_dropped(caplog):
  env, other = make_env(1), make_env(2)
  try:
    finished = []
    runner = driver_lib.Driver([env, other], [lambda ep, i: finished.append((i, ep))])
    policy = driver_lib.random_policy(env.action_spec(), seed=0)
    assert runner(policy, steps=2 * 6) == (12, 0)  # 6 agent steps into each episode
    kill_worker(env)
    with caplog.at_level(logging.WARNING):
      steps, episodes = runner(policy, episodes=3)
    assert 'Environment worker 0 died' in caplog.text
    assert 'dropped its unfinished episode of 6 steps' in caplog.text
    assert env.restarts == 1
    assert all(len(ep['reward']) == LIMIT // 2 + 1 for _, ep in finished)  # only whole ones
    # The counts (12 before, `steps` now) hold every kept or running step, not the dropped 6.
    kept = sum(len(ep['reward']) - 1 for _, ep in finished)
    running = sum(len(e) - 1 for e in runner._episodes)
    assert 12 + steps == kept + running
  finally:
    env.close()
    other.close()


def test_repeated_deaths_give_up_with_the_worker_error():
  env = make_env(3)
  try:
    runner = driver_lib.Driver([env], max_restarts=0)
    policy = driver_lib.random_policy(env.action_spec(), seed=0)
    runner(policy, steps=2)
    kill_worker(env)
    with pytest.raises(WorkerDied, match='environment worker exited'):
      runner(policy, steps=2)
  finally:
    env.close()


def test_a_restarted_worker_does_not_replay_the_first_episodes():
  env = make_env(4)
  try:
    first = env.reset().observation
    env.restart()
    again = env.reset().observation
    assert not all(np.array_equal(first[k], again[k]) for k in first if not k.endswith('_flag'))
  finally:
    env.close()


def test_one_episode_each_takes_every_envs_first_episode_however_short():
  """A short episode's env idles on; its second episode is not counted in its place."""
  from mummi_tf.run import evaluation
  long_env = make_env(5)
  short_env = envs_lib.make(TASK, seed=6, time_limit=LIMIT // 2, missing='none')
  try:
    policy = driver_lib.random_policy(long_env.action_spec(), seed=0)
    episodes = evaluation.one_episode_each(policy, [long_env, short_env])
    assert [len(ep['reward']) for ep in episodes] == [LIMIT // 2 + 1, LIMIT // 4 + 1]
  finally:
    long_env.close()
    short_env.close()


def test_the_evaluator_runs_a_conditions_episodes_side_by_side_on_distinct_seeds():
  import gin
  from mummi_tf.run import evaluation
  with gin.unlock_config():
    gin.bind_parameter('mummi_tf.envs.make.time_limit', LIMIT)
    gin.bind_parameter('mummi_tf.evaluation.conditions.levels', ('none', 'high'))
  evaluator = evaluation.Evaluator(TASK, seed=0, parallel=2)
  try:
    policy = driver_lib.random_policy(evaluator._pool('none', 1)[0].action_spec(), seed=0)
    returns = evaluator(policy, episodes=3)
    assert {name: len(r) for name, r in returns.items()} == {'none': 3, 'high': 3}
    assert {name: len(pool) for name, pool in evaluator.envs.items()} == {'none': 2, 'high': 2}
    assert len(set(returns['none'])) == 3  # three different episodes, not one replayed
  finally:
    evaluator.close()


def test_action_stats_measure_saturation_and_sign_flips_after_the_first_row():
  from mummi_tf.run import evaluation
  action = np.array(
      [
          [0.0, 0.0],  # the row before the first step: not an action taken
          [1.0, 0.5],
          [-1.0, 0.5],
          [0.95, -0.2],
          [0.99, -0.3]
      ],
      np.float32)
  stats = evaluation.action_stats(action)
  assert stats['saturated'] == 4 / 8  # |a| > 0.9: the four entries of dimension 0
  assert stats['flips'] == 3 / 6  # dim 0: + - + + (2 flips); dim 1: + + - - (1 flip)
  smooth = np.tile(np.linspace(0.1, 0.3, 10)[:, None], (1, 3))
  assert evaluation.action_stats(smooth) == {'saturated': 0.0, 'flips': 0.0}
