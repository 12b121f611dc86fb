"""The Natural MuJoCo environment itself (see `dmc.py` for the suite-module entry point).

Imports dm_control, so only worker processes import this module: a process that has
TensorFlow loaded crashes on exit (or segfaults) once dm_control's GL libraries are loaded.
"""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import dm_env  # noqa: E402
import numpy as np  # noqa: E402
from dm_control.rl import control  # noqa: E402
from dm_control.suite import ball_in_cup, finger, walker  # noqa: E402
from dm_env import specs  # noqa: E402

from mummi_tf.envs import backgrounds, render, touch  # noqa: E402

# task -> (suite module, domain for touch.py, task factory(random) -> suite Task, control dt)
_TASKS = {
    'walker_stand': (walker, 'walker', lambda r: walker.PlanarWalker(move_speed=0, random=r)),
    'walker_walk':
        (walker, 'walker', lambda r: walker.PlanarWalker(move_speed=walker._WALK_SPEED, random=r)),
    'walker_run':
        (walker, 'walker', lambda r: walker.PlanarWalker(move_speed=walker._RUN_SPEED, random=r)),
    'finger_spin': (finger, 'finger', lambda r: finger.Spin(random=r)),
    'cup_catch': (ball_in_cup, 'ball_in_cup', lambda r: ball_in_cup.BallInCup(random=r)),
}


def build_physics(task):
  """The suite task's Physics with touch sensors added to the installed MJCF."""
  module, domain, _ = _TASKS[task]
  xml, assets = module.get_model_and_assets()
  return module.Physics.from_xml_string(touch.add_touch_sensors(domain, xml), assets)


class NaturalMujoco(dm_env.Environment):
  """One Natural MuJoCo task emitting ``modalities`` (checked by ``dmc.load``, which makes it)
  and `state`."""
  def __init__(self, task, modalities, size=(64, 64), seed=None, camera=0, shadows=True,
               background='photos', split='train', depth_range=2.5):
    self._modalities = tuple(modalities)
    module, self._domain, make_task = _TASKS[task]
    seeds = np.random.SeedSequence(seed).spawn(2)
    physics = build_physics(task)
    suite_task = make_task(np.random.RandomState(seeds[0].generate_state(1)[0]))
    self._env = control.Environment(physics, suite_task, time_limit=float('inf'),
                                    control_timestep=module._CONTROL_TIMESTEP)
    self._size = tuple(size)
    self._images = {'rgb', 'depth'} & set(self._modalities)
    self._renderer = render.Renderer(physics, self._size, camera, shadows,
                                     depth_range) if self._images else None
    self._backgrounds = backgrounds.Backgrounds(background, split, self._size, seeds[1])
    state = self._env.observation_spec()
    self._state_size = int(sum(np.prod(s.shape, dtype=int) for s in state.values()))

  @property
  def physics(self):
    return self._env.physics

  @property
  def modalities(self):
    return self._modalities

  def observation_spec(self):
    h, w = self._size
    shapes = {
        'rgb': ((h, w, 3), np.uint8),
        'depth': ((h, w, 1), np.uint8),
        'touch': ((len(touch.SENSORS[self._domain]),), np.float32)
    }
    spec = {m: specs.Array(*shapes[m], name=m) for m in self._modalities if m != 'state'}
    spec['state'] = specs.Array((self._state_size,), np.float32, name='state')
    return spec

  def action_spec(self):
    return self._env.action_spec()

  def _observe(self, suite_obs):
    obs = {}
    if self._renderer is not None:
      rgb, depth, background = self._renderer.render()
      if 'rgb' in self._images:
        frame = self._backgrounds.frame()
        if frame is not None:
          rgb[background] = frame[background]
        obs['rgb'] = rgb
      if 'depth' in self._images:
        obs['depth'] = depth
    if 'touch' in self._modalities:
      obs['touch'] = touch.normalize(touch.read_forces(self.physics, self._domain))
    obs['state'] = np.concatenate([np.asarray(v, np.float32).ravel() for v in suite_obs.values()])
    return {m: obs[m] for m in dict.fromkeys((*self._modalities, 'state'))}

  def reset(self):
    ts = self._env.reset()
    self._backgrounds.reset()
    return ts._replace(observation=self._observe(ts.observation))

  def step(self, action):
    ts = self._env.step(action)
    return ts._replace(observation=self._observe(ts.observation))

  def step_without_observation(self, action):
    """Advances physics like `step` but skips rendering; returns (reward, discount, last).

        Used by the action-repeat wrapper for all but the last repeat.
        """
    ts = self._env.step(action)
    return ts.reward, ts.discount, ts.last()

  def close(self):
    self._env.close()
    self.physics.free()
