"""Steps several environments in lock-step with one batched policy and collects episodes.

The environments are ``dm_env`` proxies of worker processes (see ``mummi_tf.envs``); when they
offer ``step_async``/``step_wait`` all workers render in parallel while the main process waits
once. Episodes follow the contract in ``docs/ARCHITECTURE.md``: ``action[t]`` led to
observation ``t``; the reset step carries a zero action and zero reward.
"""

import functools
import logging

import numpy as np

from mummi_tf.run import timing
from mummi_tf.envs.worker import WorkerDied


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


def _call_all(envs, send, wait, meanwhile=lambda: None):
  """``send(env)`` to every env, ``meanwhile()``, then ``wait(env)`` for each. A worker that
  died on either side gives its ``WorkerDied`` in place of a result."""
  sent = []
  for env in envs:
    try:
      send(env)
      sent.append(None)
    except WorkerDied as e:
      sent.append(e)
  meanwhile()
  results = []
  for env, error in zip(envs, sent):
    try:
      results.append(error or wait(env))
    except WorkerDied as e:
      results.append(e)
  return results


def _reset_all(envs):
  if all(hasattr(e, 'reset_async') for e in envs):
    return _call_all(envs, lambda e: e.reset_async(), lambda e: e.reset_wait())
  return _call_all(envs, lambda e: None, lambda e: e.reset())


def _step_all(envs, actions, meanwhile):
  """Steps every env; ``meanwhile()`` runs while worker processes step and render."""
  todo = dict(zip(map(id, envs), actions))
  if all(hasattr(e, 'step_async') for e in envs):
    return _call_all(envs, lambda e: e.step_async(todo[id(e)]), lambda e: e.step_wait(), meanwhile)
  return _call_all(envs, lambda e: None, lambda e: e.step(todo[id(e)]), meanwhile)


class Driver:
  """``driver(policy, steps=..., episodes=...)`` runs until either count is reached.

  ``policy(obs, state) -> (actions, state)`` gets the batched observations plus ``is_first``
  (B,) and must reset its state rows where ``is_first`` is set. Each completed episode is
  passed to every callback as ``callback(episode, env_index)``. Unfinished episodes carry on
  across calls. ``meanwhile(step)`` (optional) runs in this process while the env workers
  step, so training overlaps collection. A worker process that dies is replaced (its
  unfinished episode dropped, a warning logged) up to ``max_restarts`` times in a row per
  env; returned step counts include only steps of episodes that are kept or still running.
  ``clock`` (a ``timing.Clock``; default a private one) times the policy calls as
  ``policy`` and the env resets and steps as ``env`` (less ``meanwhile``'s own sections).
  """
  def __init__(self, envs, callbacks=(), max_restarts=3, clock=None):
    self.envs = list(envs)
    self.callbacks = list(callbacks)
    self.max_restarts = int(max_restarts)
    self.clock = clock or timing.Clock()
    spec = self.envs[0].action_spec()
    self._action_zeros = np.zeros(spec.shape, np.float32)
    self._failures = [0] * len(self.envs)  # worker deaths since env i last finished an episode
    self.reset()

  def reset(self):
    self._timesteps = [None] * len(self.envs)
    self._episodes = [None] * len(self.envs)
    self._state = None

  def __call__(self, policy, steps=0, episodes=0, meanwhile=None):
    step = episode = 0
    while (steps and step < steps) or (episodes and episode < episodes):
      if self._episodes[0] is None:  # The first call (or after reset()).
        with self.clock('env'):
          for i, timestep in enumerate(_reset_all(self.envs)):
            self._start(i, timestep)
        self._state = None
      obs = _batch([t.observation for t in self._timesteps])
      obs['is_first'] = np.array([len(ep) == 1 for ep in self._episodes])
      with self.clock('policy'):
        actions, self._state = policy(obs, self._state)
        actions = np.asarray(actions, np.float32)
      with self.clock('env'):
        results = _step_all(self.envs, actions,
                            functools.partial(meanwhile, step) if meanwhile else (lambda: None))
      step += len(self.envs)
      for i, (timestep, action) in enumerate(zip(results, actions)):
        if isinstance(timestep, WorkerDied):  # Its unfinished episode is not counted.
          step -= len(self._episodes[i])
          self._start(i, timestep)
          continue
        self._episodes[i].append(_transition(timestep, action, False))
        self._timesteps[i] = timestep
        if timestep.last():
          finished = stack_episode(self._episodes[i])
          for callback in self.callbacks:
            callback(finished, i)
          episode += 1
          self._failures[i] = 0
          self._episodes[i] = None
          self._start(i, self._reset(i))
    return step, episode

  def _reset(self, i):
    try:
      with self.clock('env'):
        return self.envs[i].reset()
    except WorkerDied as e:
      return e

  def _start(self, i, timestep):
    """Env i begins an episode at ``timestep``; a dead worker (``WorkerDied``) is replaced
    first, up to ``max_restarts`` times in a row, and its unfinished episode dropped."""
    while isinstance(timestep, WorkerDied):
      self._failures[i] += 1
      env = self.envs[i]
      if self._failures[i] > self.max_restarts or not hasattr(env, 'restart'):
        raise timestep
      logging.warning(
          'Environment worker %d died (%s); replaced it (restart %d of at most %d in a row) '
          'and dropped its unfinished episode of %d steps.', i, timestep, self._failures[i],
          self.max_restarts, max(0,
                                 len(self._episodes[i] or [None]) - 1))
      with self.clock('env'):
        env.restart()
      timestep = self._reset(i)
    self._timesteps[i] = timestep
    self._episodes[i] = [_transition(timestep, self._action_zeros, True)]


def random_policy(action_spec, seed=0):
  """Uniform random actions in the action bounds (prefill)."""
  rng = np.random.default_rng(seed)

  def policy(obs, state):
    size = (len(obs['is_first']),) + tuple(action_spec.shape)
    return rng.uniform(action_spec.minimum, action_spec.maximum, size).astype(np.float32), state

  return policy
