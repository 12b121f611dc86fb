"""Natural MuJoCo suite (paper Sec. V): dm_control tasks with rgb, depth and touch modalities.

`load(task, ...)` returns the raw `dm_env.Environment` of the suite-module contract
(docs/ARCHITECTURE.md): observations are the requested modalities plus `state` (the suite's
proprioceptive observation, flattened, diagnostics only); the suite's action bounds; no
action repeat and no time limit (the wrappers of `mummi_tf.envs.make` add both).

- `rgb` (H, W, 3) uint8: camera `camera` with the natural background (`backgrounds.py`)
  composited over sky and floor using MuJoCo's segmentation (`render.py`).
- `depth` (H, W, 1) uint8: same camera and render pass; metres / (depth_range * extent).
- `touch` (C,) float32: log1p of the contact force (N) of the sensors added in `touch.py`.
"""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import dm_env  # noqa: E402
import gin  # noqa: E402
import numpy as np  # noqa: E402
from dm_control.rl import control  # noqa: E402
from dm_control.suite import ball_in_cup, finger, walker  # noqa: E402
from dm_env import specs  # noqa: E402

from mummi_tf.envs import backgrounds, render, touch  # noqa: E402

# task -> (suite module, domain for touch.py, task factory(random) -> suite Task, control dt)
_TASKS = {
    'walker_stand': (walker, 'walker', lambda r: walker.PlanarWalker(move_speed=0, random=r)),
    'walker_walk': (walker, 'walker',
                    lambda r: walker.PlanarWalker(move_speed=walker._WALK_SPEED, random=r)),
    'walker_run': (walker, 'walker',
                   lambda r: walker.PlanarWalker(move_speed=walker._RUN_SPEED, random=r)),
    'finger_spin': (finger, 'finger', lambda r: finger.Spin(random=r)),
    'cup_catch': (ball_in_cup, 'ball_in_cup', lambda r: ball_in_cup.BallInCup(random=r)),
}
TASKS = tuple(_TASKS)
MODALITIES = ('rgb', 'depth', 'touch')


def _check(task, modalities):
    if task not in _TASKS:
        raise ValueError(f'unknown Natural MuJoCo task {task!r}; valid: {", ".join(TASKS)}')
    modalities = MODALITIES if modalities is None else tuple(modalities)
    bad = [m for m in modalities if m not in MODALITIES]
    if bad or not modalities:
        raise ValueError(f'unknown modalities {bad} for {task}; valid: {", ".join(MODALITIES)}')
    return modalities


def build_physics(task):
    """The suite task's Physics with touch sensors added to the installed MJCF."""
    module, domain, _ = _TASKS[task]
    xml, assets = module.get_model_and_assets()
    return module.Physics.from_xml_string(touch.add_touch_sensors(domain, xml), assets)


class NaturalMujoco(dm_env.Environment):
    """One Natural MuJoCo task emitting the requested modalities and `state`."""

    def __init__(self, task, size=(64, 64), modalities=None, seed=None, camera=0,
                 shadows=True, background='photos', split='train', depth_range=2.5):
        self._modalities = _check(task, modalities)
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
        shapes = {'rgb': ((h, w, 3), np.uint8), 'depth': ((h, w, 1), np.uint8),
                  'touch': ((len(touch.SENSORS[self._domain]),), np.float32)}
        spec = {m: specs.Array(*shapes[m], name=m) for m in self._modalities}
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
        obs['state'] = np.concatenate(
            [np.asarray(v, np.float32).ravel() for v in suite_obs.values()])
        return {m: obs[m] for m in (*self._modalities, 'state')}

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


@gin.configurable(module='mummi_tf.envs.dmc')
def load(task, *, size=(64, 64), modalities=None, seed=None, camera=0, shadows=True,
         background='photos', split='train', depth_range=2.5):
    """The raw Natural MuJoCo env of `task` (suite-module contract, docs/ARCHITECTURE.md).

    Args beyond the contract's: camera (id or name), shadows (True: faithful; False renders
    several times faster), background ('photos' | 'none' | a folder, see backgrounds.py),
    split ('train' | 'test' backgrounds), depth_range (depth clip distance in units of the
    model's extent).
    """
    return NaturalMujoco(task, size=size, modalities=modalities, seed=seed, camera=camera,
                         shadows=shadows, background=background, split=split,
                         depth_range=depth_range)
