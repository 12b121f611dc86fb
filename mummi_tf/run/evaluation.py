"""Evaluation under missing sensors (paper Sec. V: None 0 %, Medium 37.5 %, High 75 %).

Each condition is a set of ``mummi_tf.envs.make`` options; the policy acts without exploration
noise (``Agent.eval_policy``; latent-guided MPC as configured), ``Evaluator.parallel`` episodes
of a condition at a time (batched policy calls). Returns, lengths, the
measured missing fraction of every modality and how bang-bang the actions are
(``action_stats``) are reported per condition, episodes are kept in
``logdir/eval_episodes/<condition>/`` and the first episode of each condition becomes a video.
"""

import pathlib
import shutil

import gin
import numpy as np

from mummi_tf.run import driver as driver_lib
from mummi_tf import envs as envs_lib
from mummi_tf.run import replay as replay_lib


@gin.configurable(module='mummi_tf.evaluation')  # the name users bind, from before run/
def conditions(levels=('none', 'medium', 'high'), remove=(), env_options=None):
  """The evaluation conditions: ``{name: mummi_tf.envs.make options}``.

  ``levels``: missing levels of ``mummi_tf.envs.make`` (none 0 %, medium 37.5 %, high 75 %),
  each a condition of the same name. ``remove``: (name, modalities, level) triples that also
  drop whole modalities for whole episodes (Table II's "robot camera only" rows).
  ``env_options``: options of every evaluation env (Natural MuJoCo: the test backgrounds).
  """
  extra = dict(env_options or {})
  result = {level: {'missing': level, **extra} for level in levels}
  for name, modalities, level in remove:
    result[name] = {'missing': level, 'remove': tuple(modalities), **extra}
  return result


def video_frames(episode):
  """The agent's view of its first image modality (missing frames show black)."""
  for value in episode.values():
    if value.dtype == np.uint8 and value.ndim == 4:
      frames = value if value.shape[-1] == 3 else np.repeat(value[..., :1], 3, -1)
      return frames
  return None


def action_stats(action, threshold=0.9):
  """How bang-bang an episode's actions are, (T, A) in [-1, 1] (the first row, before any
  step, left out): ``saturated``, the fraction of entries with |a| > ``threshold``; ``flips``,
  the fraction whose sign differs from the step before. A walker that balances moves
  smoothly (few flips); one that chatters between the bounds saturates and flips."""
  a = np.asarray(action, np.float32)[1:]
  return {
      'saturated': float(np.mean(np.abs(a) > threshold)) if a.size else 0.0,
      'flips': float(np.mean(np.sign(a[1:]) != np.sign(a[:-1]))) if len(a) > 1 else 0.0
  }


def one_episode_each(policy, envs, check=None):
  """One episode from every env, stepped in lock-step; returns them in the envs' order.
  ``check`` (e.g. a stop request's) is called before each lock-step and may raise."""
  finished = {}
  runner = driver_lib.Driver(envs, [lambda episode, i: finished.setdefault(i, episode)])
  while len(finished) < len(envs):
    if check is not None:
      check()
    runner(policy, steps=len(envs))
  return [finished[i] for i in range(len(envs))]


def _staging(logdir, step):
  return pathlib.Path(logdir) / 'eval_episodes' / f'.step-{int(step)}'


def commit(logdir, step):
  """Moves ``eval_episodes/.step-<step>/<condition>/*`` to ``eval_episodes/<condition>/``."""
  staging = _staging(logdir, step)
  for path in sorted(staging.glob('*/*')):
    (staging.parent / path.parent.name).mkdir(exist_ok=True)
    path.replace(staging.parent / path.parent.name / path.name)
  shutil.rmtree(staging, ignore_errors=True)


def recover(logdir, evaluated_at):
  """After a crash: the staged episodes of the evaluation at ``evaluated_at`` (its metrics
  were written) are moved into place; those of any other step (cut short before its
  metrics) are deleted, so the redone evaluation replaces rather than adds to them."""
  for staging in sorted((pathlib.Path(logdir) / 'eval_episodes').glob('.step-*')):
    step = int(staging.name.split('-', 1)[1])
    if step == evaluated_at:
      commit(logdir, step)
    else:
      shutil.rmtree(staging)


PARALLEL = 5  # env workers per condition unless gin binds Evaluator.parallel


@gin.configurable(denylist=['task', 'seed', 'logdir', 'action_repeat'])
class Evaluator:
  """Owns ``parallel`` environments per condition and runs evaluation episodes with a policy.

  The episodes of a condition run ``parallel`` at a time in lock-step: one batched policy
  call per agent step, the workers rendering side by side. Each environment gives exactly one
  episode per round (an env that finishes early idles on, its next episode dropped), so
  short episodes are not over-represented.
  """
  def __init__(self, task, seed, logdir=None, action_repeat=1, parallel=PARALLEL):
    if int(parallel) < 1:
      raise ValueError(f'Evaluator.parallel must be >= 1, got {parallel!r}')
    self.task, self.seed, self.parallel = task, seed, int(parallel)
    self.conditions = conditions()
    self.logdir = logdir
    self.action_repeat = action_repeat
    self.envs = {name: [] for name in self.conditions}  # workers started on first need

  @staticmethod
  def configured_parallel():
    """``Evaluator.parallel`` as gin binds it (before any evaluator exists)."""
    return int(gin.get_bindings(Evaluator).get('parallel', PARALLEL))

  def __call__(self, policy, episodes, logger=None, step=0, check=None, progress=None):
    """Runs ``episodes`` episodes per condition; returns ``{name: [returns]}``.
    ``progress(name, returns)``, when given, hears each condition as it finishes.

    Episodes are saved and logged only once every condition has finished, so an
    evaluation cut short (a crash, or ``check`` raising at a lock-step: a stop signal) leaves
    nothing behind and is redone whole on resume.
    """
    collected = {}
    for name in self.conditions:
      envs = self._pool(name, min(self.parallel, episodes))
      collected[name] = []
      for start in range(0, episodes, len(envs)):
        collected[name] += one_episode_each(policy, envs[:episodes - start], check)
      if progress is not None:
        progress(name, [float(ep['reward'].sum()) for ep in collected[name]])
    if logger is not None:
      for name, finished in collected.items():
        self._log(logger, name, finished, step)
    return {
        name: [float(ep['reward'].sum()) for ep in finished] for name, finished in collected.items()
    }

  def _pool(self, name, size):
    """The first ``size`` envs of condition ``name``; env j of condition i is seeded
    ``(seed, 10_000 + i, j)``, apart from the training env's ``seed``."""
    i = list(self.conditions).index(name)
    pool = self.envs[name]
    while len(pool) < size:
      pool.append(
          envs_lib.make(self.task, seed=(self.seed, 10_000 + i, len(pool)),
                        **self.conditions[name]))
    return pool[:size]

  def commit(self, step):
    """Moves the staged episodes of the evaluation at ``step`` into place; call it once
    the evaluation's metrics are written (``recover`` finishes or undoes a cut one)."""
    if self.logdir is not None:
      commit(self.logdir, step)

  def _log(self, logger, name, episodes, step):
    returns = [float(episode['reward'].sum()) for episode in episodes]
    if returns:  # The spread between episodes (the per-episode returns average out).
      logger.scalar(f'test/return_std_{name}', np.std(returns))
      if name == 'none':
        logger.scalar('test/return_std', np.std(returns))
    for episode in episodes:
      if self.logdir is not None:
        replay_lib.save_episode(_staging(self.logdir, step) / name, episode)
      ret = float(episode['reward'].sum())
      length = len(episode['reward']) - 1  # agent steps, as upstream
      logger.scalar(f'test/return_{name}', ret)
      logger.scalar(f'test/length_{name}', length)
      if name == 'none':
        logger.scalar('test/return', ret)
        logger.scalar('test/length', length)
      for stat, value in action_stats(episode['action']).items():
        logger.scalar(f'test/action_{stat}_{name}', value)
      for modality, fraction in envs_lib.missing_fraction(episode).items():
        logger.scalar(f'test/missing_{name}/{modality}', fraction)
    frames = video_frames(episodes[0]) if episodes else None
    if frames is not None:
      logger.video(f'test/video_{name}', frames, step)

  def close(self):
    for envs in self.envs.values():
      for env in envs:
        env.close()
