"""Evaluation under missing sensors (paper Sec. V: None 0 %, Medium 37.5 %, High 75 %).

Each condition is a set of ``mummi_tf.envs.make`` options; the policy acts deterministically
(mode actions, no exploration noise; latent-guided MPC as configured). Returns, lengths and the
measured missing fraction of every modality are reported per condition, episodes are kept in
``logdir/eval_episodes/<condition>/`` and the first episode of each condition becomes a video.
"""

import pathlib
import shutil

import gin
import numpy as np

from mummi_tf import driver as driver_lib
from mummi_tf import envs as envs_lib
from mummi_tf import replay as replay_lib


@gin.configurable
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


class Evaluator:
  """Owns one environment per condition and runs evaluation episodes with a policy."""
  def __init__(self, task, seed, logdir=None, action_repeat=1):
    self.conditions = conditions()
    self.logdir = logdir
    self.action_repeat = action_repeat
    self.envs = {
        name: envs_lib.make(task, seed=seed + 10_000 + i, **opts)
        for i, (name, opts) in enumerate(self.conditions.items())
    }

  def __call__(self, policy, episodes, logger=None, step=0):
    """Runs ``episodes`` episodes per condition; returns ``{name: [returns]}``.

    Episodes are saved and logged only once every condition has finished, so an
    evaluation cut short (a crash) leaves nothing behind and is redone whole on resume.
    """
    collected = {}
    for name, env in self.envs.items():
      collected[name] = []
      runner = driver_lib.Driver([env], [lambda ep, _, out=collected[name]: out.append(ep)])
      runner(policy, episodes=episodes)
    if logger is not None:
      for name, finished in collected.items():
        self._log(logger, name, finished, step)
    return {
        name: [float(ep['reward'].sum()) for ep in finished] for name, finished in collected.items()
    }

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
      for modality, fraction in envs_lib.missing_fraction(episode).items():
        logger.scalar(f'test/missing_{name}/{modality}', fraction)
    frames = video_frames(episodes[0]) if episodes else None
    if frames is not None:
      logger.video(f'test/video_{name}', frames, step)

  def close(self):
    for env in self.envs.values():
      env.close()
