"""dm_env wrappers in the Dreamer order: action repeat, action normalisation, time limit,
missing sensors (+ `<modality>_flag`), episode collection."""
import dm_env
import numpy as np
from dm_env import specs

from mummi_tf.envs import missing as missing_lib


class Wrapper(dm_env.Environment):
  """Forwards everything to the wrapped environment."""
  def __init__(self, env):
    self._env = env

  def __getattr__(self, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return getattr(self._env, name)

  def reset(self):
    return self._env.reset()

  def step(self, action):
    return self._env.step(action)

  def observation_spec(self):
    return self._env.observation_spec()

  def action_spec(self):
    return self._env.action_spec()

  def reward_spec(self):
    return self._env.reward_spec()

  def discount_spec(self):
    return self._env.discount_spec()

  def close(self):
    self._env.close()


class ActionRepeat(Wrapper):
  """Repeats each action `amount` times, summing rewards and multiplying discounts.

    Only the last repeat renders when the env offers `step_without_observation`.
    """
  def __init__(self, env, amount):
    super().__init__(env)
    if amount < 1:
      raise ValueError(f'action repeat must be >= 1, got {amount}')
    self._amount = amount
    self._fast = getattr(env, 'step_without_observation', None)

  def step(self, action):
    reward, discount = 0.0, 1.0
    for _ in range(self._amount - 1):
      if self._fast is None:
        ts = self._env.step(action)
        if ts.last():
          return ts._replace(reward=reward + (ts.reward or 0.0),
                             discount=discount * _or_one(ts.discount))
        r, d = ts.reward, ts.discount
      else:
        r, d, last = self._fast(action)
        if last:
          raise RuntimeError('episode ended inside an action repeat, where no '
                             'observation is rendered')
      reward += r or 0.0
      discount *= _or_one(d)
    ts = self._env.step(action)
    return ts._replace(reward=reward + (ts.reward or 0.0), discount=discount * _or_one(ts.discount))


def _or_one(value):
  return 1.0 if value is None else value


class NormalizeActions(Wrapper):
  """Accepts float32 actions in [-1, 1] and maps them affinely onto the env's bounds."""
  def __init__(self, env):
    super().__init__(env)
    spec = env.action_spec()
    self._low = np.asarray(spec.minimum, np.float64) * np.ones(spec.shape)
    self._high = np.asarray(spec.maximum, np.float64) * np.ones(spec.shape)
    if not (np.all(np.isfinite(self._low)) and np.all(np.isfinite(self._high))):
      raise ValueError('action normalisation needs finite action bounds')
    self._dtype = spec.dtype

  def action_spec(self):
    spec = self._env.action_spec()
    return specs.BoundedArray(spec.shape, np.float32, -1.0, 1.0, name='action')

  def step(self, action):
    action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
    return self._env.step(
        (self._low + (action + 1.0) / 2.0 * (self._high - self._low)).astype(self._dtype))


class TimeLimit(Wrapper):
  """Ends the episode (LAST step, discount kept) after `duration` steps of the wrapped env."""
  def __init__(self, env, duration):
    super().__init__(env)
    self.duration = int(duration)
    self._step = None

  def reset(self):
    self._step = 0
    return self._env.reset()

  def step(self, action):
    if self._step is None:
      return self.reset()
    ts = self._env.step(action)
    self._step += 1
    if self._step >= self.duration and not ts.last():
      ts = ts._replace(step_type=dm_env.StepType.LAST)
    if ts.last():
      self._step = None
    return ts


class MissingSensors(Wrapper):
  """Drops segments of each modality (see `missing.py`) and adds `<modality>_flag`.

    A dropped observation is all zeros with flag 0; present ones have flag 1. Modalities in
    `remove` are dropped for whole episodes (e.g. "robot camera only" evaluation).
    `length` is the number of observations per episode (time limit + 1) the masks cover;
    longer episodes draw further masks of that length. `last_fraction` holds the measured
    missing fraction per modality of the last finished episode.
    """
  def __init__(self, env, modalities, mode='paper', missing='train', max_segment=14, remove=(),
               length=501, seed=None):
    super().__init__(env)
    self._modalities = tuple(modalities)
    bad = [m for m in remove if m not in self._modalities]
    if bad:
      raise ValueError(f'cannot remove unknown modalities {bad}; valid: '
                       f'{", ".join(self._modalities)}')
    self._mode = mode
    self._rate = missing_lib.resolve_rate(mode, missing)
    self._max_segment = int(max_segment)
    self._remove = tuple(remove)
    self._length = int(length)
    self._rngs = {
        m: np.random.default_rng(s)
        for m, s in zip(self._modalities,
                        np.random.SeedSequence(seed).spawn(len(self._modalities)))
    }
    spec = env.observation_spec()
    self._zeros = {m: np.zeros(spec[m].shape, spec[m].dtype) for m in self._modalities}
    self._masks, self._t, self._dropped = None, 0, None
    self.last_fraction = None

  def observation_spec(self):
    spec = dict(self._env.observation_spec())
    for m in self._modalities:
      spec[m + '_flag'] = specs.Array((), np.float32, name=m + '_flag')
    return spec

  def _mask(self, m):
    if m in self._remove:
      return np.ones(self._length, bool)
    return missing_lib.make_mask(self._mode, self._rngs[m], self._length, self._rate,
                                 self._max_segment)

  def _apply(self, ts):
    if self._t >= len(next(iter(self._masks.values()))):
      for m in self._modalities:
        self._masks[m] = np.concatenate([self._masks[m], self._mask(m)])
    obs = dict(ts.observation)
    for m in self._modalities:
      gone = self._masks[m][self._t]
      if gone:
        obs[m] = self._zeros[m].copy()
        self._dropped[m] += 1
      obs[m + '_flag'] = np.float32(0.0 if gone else 1.0)
    self._t += 1
    if ts.last():
      self.last_fraction = {m: self._dropped[m] / self._t for m in self._modalities}
    return ts._replace(observation=obs)

  def reset(self):
    self._masks = {m: self._mask(m) for m in self._modalities}
    self._t = 0
    self._dropped = {m: 0 for m in self._modalities}
    return self._apply(self._env.reset())

  def step(self, action):
    if self._masks is None:
      return self.reset()
    ts = self._apply(self._env.step(action))
    if ts.last():
      self._masks, self._t = None, 0  # the next step starts a new episode
    return ts
