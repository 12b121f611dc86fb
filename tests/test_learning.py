"""Learning, not just running: the agent must solve the toy 2-D world's goal-reaching task
(``gin/toy2d_learn.gin``) in about a minute of CPU per method, clearly beating random actions.

A change that breaks learning anywhere -- world model, imagination, actor, value, the loop --
fails here. Runs with one seed are not bitwise reproducible (docs/methods.md, "Reproducibility"), so the
threshold leaves room: the better of the last two evaluations must reach 15 and 4x random
(seeded runs reached Dreamer 38, MuMMI 35 test return at 3000 env steps, the slowest MuMMI run
seen 17; random actions about 3-4; broken learners 0.7-6.6; staying at the goal about 45).
"""
import json

import numpy as np
import pytest

from mummi_tf.run import driver as driver_lib
from mummi_tf import envs
from mummi_tf.cli import train

TASK = 'toy2d_x_y'


def random_return(episodes=10):
  env = envs.make(TASK, seed=5, action_repeat=1, time_limit=50, missing='none', process=False)
  returns = []
  runner = driver_lib.Driver([env], [lambda ep, _: returns.append(ep['reward'].sum())])
  runner(driver_lib.random_policy(env.action_spec(), seed=5), episodes=episodes)
  return float(np.mean(returns))


@pytest.mark.parametrize('method', ['dreamer', 'mummi'])
def test_agent_learns_to_reach_the_goal(tmp_path, method):
  assert train.main([
      '--task', TASK, '--logdir',
      str(tmp_path), '--seed', '0', '--gin_file', method, '--gin_file', 'toy2d_learn'
  ]) == 0
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  tests = [l['test/return'] for l in lines if 'test/return' in l]
  baseline = random_return()
  assert baseline < 6.0
  assert len(tests) == 6  # every 500 env steps after the prefill
  assert max(tests[-2:]) >= max(15.0, 4 * baseline), (tests, baseline)
