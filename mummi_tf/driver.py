"""Steps several environments in lock-step with one batched policy and collects episodes.

The environments are ``dm_env`` proxies of worker processes (see ``mummi_tf.envs``); when they
offer ``step_async``/``step_wait`` all workers render in parallel while the main process waits
once. Episodes follow the contract in ``docs/ARCHITECTURE.md``: ``action[t]`` led to
observation ``t``; the reset step carries a zero action and zero reward.
"""

import numpy as np


def _transition(timestep, action, is_first):
  step = {k: np.asarray(v) for k, v in timestep.observation.items()}
  step['action'] = np.asarray(action, np.float32)
  step['reward'] = np.float32(timestep.reward or 0.0)
  step['discount'] = np.float32(1.0 if timestep.discount is None else timestep.discount)
  step['is_first'] = np.bool_(is_first)
  return step


def stack_episode(steps):
  return {k: np.stack([s[k] for s in steps]) for k in steps[0]}


def _batch(observations):
  return {k: np.stack([o[k] for o in observations]) for k in observations[0]}


def _reset_all(envs):
  if all(hasattr(e, 'reset_async') for e in envs):
    for env in envs:
      env.reset_async()
    return [env.reset_wait() for env in envs]
  return [env.reset() for env in envs]


def _step_all(envs, actions, meanwhile):
  """Steps every env; ``meanwhile()`` runs while worker processes step and render."""
  if all(hasattr(e, 'step_async') for e in envs):
    for env, action in zip(envs, actions):
      env.step_async(action)
    meanwhile()
    return [env.step_wait() for env in envs]
  timesteps = [env.step(a) for env, a in zip(envs, actions)]
  meanwhile()
  return timesteps


class Driver:
  """``driver(policy, steps=..., episodes=...)`` runs until either count is reached.

  ``policy(obs, state) -> (actions, state)`` gets the batched observations plus ``is_first``
  (B,) and must reset its state rows where ``is_first`` is set. Each completed episode is
  passed to every callback as ``callback(episode, env_index)``. Unfinished episodes carry on
  across calls. ``meanwhile(step)`` (optional) runs in this process while the env workers
  step, so training overlaps collection.
  """

  def __init__(self, envs, callbacks=()):
    self.envs = list(envs)
    self.callbacks = list(callbacks)
    spec = self.envs[0].action_spec()
    self._action_zeros = np.zeros(spec.shape, np.float32)
    self.reset()

  def reset(self):
    self._timesteps = None
    self._episodes = [None] * len(self.envs)
    self._state = None

  def __call__(self, policy, steps=0, episodes=0, meanwhile=None):
    step = episode = 0
    while (steps and step < steps) or (episodes and episode < episodes):
      if self._timesteps is None:
        self._timesteps = _reset_all(self.envs)
        self._episodes = [[_transition(t, self._action_zeros, True)] for t in self._timesteps]
        self._state = None
      obs = _batch([t.observation for t in self._timesteps])
      obs['is_first'] = np.array([len(ep) == 1 for ep in self._episodes])
      actions, self._state = policy(obs, self._state)
      actions = np.asarray(actions, np.float32)
      self._timesteps = _step_all(
          self.envs, actions, (lambda: meanwhile(step)) if meanwhile else (lambda: None))
      step += len(self.envs)
      for i, (timestep, action) in enumerate(zip(self._timesteps, actions)):
        self._episodes[i].append(_transition(timestep, action, False))
        if timestep.last():
          finished = stack_episode(self._episodes[i])
          for callback in self.callbacks:
            callback(finished, i)
          episode += 1
          self._timesteps[i] = self.envs[i].reset()
          self._episodes[i] = [_transition(self._timesteps[i], self._action_zeros, True)]
    return step, episode


def random_policy(action_spec, seed=0):
  """Uniform random actions in the action bounds (prefill)."""
  rng = np.random.default_rng(seed)

  def policy(obs, state):
    size = (len(obs['is_first']),) + tuple(action_spec.shape)
    return rng.uniform(action_spec.minimum, action_spec.maximum, size).astype(np.float32), state

  return policy
