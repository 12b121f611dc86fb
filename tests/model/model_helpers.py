"""Shared test data of the model tests: tiny sizes, specs and batches. Not in conftest.py:
test files that import `conftest` by name clash with any other conftest in one pytest run."""
import numpy as np

TINY = dict(deter=8, stoch=4, fused=8, hidden=8, cnn_depth=2, mlp_units=8, embed=16,
            expert_hidden=8, reward_units=8, reward_layers=1)
METHODS = ('mummi', 'mummi_b', 'cvrl', 'dreamer', 'mssm_e')
ACTION = 3


def obs_spec():
  return {
      'rgb': ((64, 64, 3), np.uint8),
      'depth': ((64, 64, 1), np.uint8),
      'touch': ((2,), np.float32),
      'rgb_flag': ((), np.float32),
      'depth_flag': ((), np.float32),
      'touch_flag': ((), np.float32),
      'state': ((5,), np.float32)
  }


def batch(b=2, t=4, seed=0):
  rng = np.random.default_rng(seed)
  return {
      'rgb': rng.integers(0, 256, (b, t, 64, 64, 3), dtype=np.uint8),
      'depth': rng.integers(0, 256, (b, t, 64, 64, 1), dtype=np.uint8),
      'touch': rng.normal(size=(b, t, 2)).astype(np.float32),
      'rgb_flag': np.ones((b, t), np.float32),
      'depth_flag': np.array([[1, 0, 1, 1]] * b, np.float32)[:, :t],
      'touch_flag': np.ones((b, t), np.float32),
      'state': rng.normal(size=(b, t, 5)).astype(np.float32),
      'action': rng.uniform(-1, 1, (b, t, ACTION)).astype(np.float32),
      'reward': rng.normal(size=(b, t)).astype(np.float32),
      'discount': np.ones((b, t), np.float32),
      'is_first': np.zeros((b, t), bool),
  }
