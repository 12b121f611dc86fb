"""Data of the toy 2-D world experiment: random-action trajectories (no TensorFlow).

Public API::

    PAIRS = {'position_camera': 'toy2d_position_camera', 'front_back': ..., 'x_y': ...}
    generate(pair, samples, *, size=(64, 64), seed=0, episode_length=100, **env_options)
        -> dict of numpy arrays: one per modality (N, ...) and 'state' (N, 2)

The robot starts each episode at a uniformly random position and follows uniformly random
actions in [-1, 1]^2 ("a robot moving in a 2-D world under random actions", the setting of Fig. 1).
"""
import numpy as np

from mummi_tf.envs import toy2d

PAIRS = {
    'position_camera': 'toy2d_position_camera',  # paper Fig. 1
    'front_back': 'toy2d_front_back',  # paper Fig. 19
    'x_y': 'toy2d_x_y',  # paper Fig. 20
}


def check_pair(pair):
  if pair not in PAIRS:
    raise ValueError(f'Unknown sensor pair {pair!r}; valid: {", ".join(PAIRS)}.')
  return PAIRS[pair]


def modalities(pair):
  """The pair's two modality names, in a fixed order."""
  return toy2d.TASK_MODALITIES[check_pair(pair)]


def generate(pair, samples, *, size=(64, 64), seed=0, episode_length=100, **env_options):
  """``samples`` observations of random-action episodes of ``episode_length`` steps."""
  task = check_pair(pair)
  if samples < 1 or episode_length < 1:
    raise ValueError(f'samples and episode_length must be >= 1, got {samples}, '
                     f'{episode_length}.')
  env = toy2d.load(task, size=size, seed=seed, **env_options)
  rng = np.random.default_rng(seed + 1)
  spec = env.observation_spec()
  data = {k: np.empty((samples,) + s.shape, s.dtype) for k, s in spec.items()}
  count = 0
  while count < samples:
    step = env.reset()
    for _ in range(episode_length):
      for key in data:
        data[key][count] = step.observation[key]
      count += 1
      if count == samples:
        break
      step = env.step(rng.uniform(-1.0, 1.0, size=2).astype(np.float32))
  return data
