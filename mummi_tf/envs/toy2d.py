"""The toy 2-D world of the paper's Fig. 1, Fig. 19 and Fig. 20 (suite module).

A point robot moves inside the square ``[-1, 1]^2`` under velocity actions::

    p_{t+1} = clip(p_t + step_size * a_t, -1 + r, 1 - r),   a_t in [-1, 1]^2

with ``r`` the robot radius. Each task is one of the paper's sensor pairs:

=========================  ============================  ==========================
task                       modalities                    paper
=========================  ============================  ==========================
``toy2d_position_camera``  ``position`` (2,) float32,    Fig. 1: laser rangers that
                           ``camera`` (H, W, 3) uint8    give (x, y) and a ceiling
                                                         camera
``toy2d_front_back``       ``front_camera``,             Fig. 19: a camera mounted
                           ``back_camera`` (H, W, 3)     in front and one behind
``toy2d_x_y``              ``x_position`` (1,),          Fig. 20: two independent
                           ``y_position`` (1,) float32   sensors, x and y
=========================  ============================  ==========================

Sensors (all rendered with numpy; no MuJoCo, no TensorFlow):

* ``position`` / ``x_position`` / ``y_position``: the true coordinates plus Gaussian noise
  of std ``sensor_noise`` (world units).
* ``camera``: a top-down ceiling view of the whole square: a grey floor with a faint
  grid and the robot as an anti-aliased red disc.
* ``front_camera`` / ``back_camera``: first-person ray-cast views (field of view
  ``fov`` degrees) looking north (+y) and south (-y). The robot does not turn, so the
  front camera always sees the north wall (and the near ends of the side walls) and the
  back camera the south wall. Every wall carries its own colour pattern that varies
  along the wall, so a view encodes x through the pattern's offset and y through the
  wall's apparent height.

Image sensors get Gaussian pixel noise of std ``pixel_noise`` (in units of 0..255).
``state`` is the true position (2,) float32. The reward is
``exp(-|p - goal|^2 / (2 * 0.25^2))`` in [0, 1]. The environment never terminates; the
time limit is applied by ``mummi_tf.envs.make``'s wrappers.
"""
import dm_env
from dm_env import specs
import numpy as np

TASKS = ('toy2d_position_camera', 'toy2d_front_back', 'toy2d_x_y')

# Modalities of each task, in a fixed order (first, second).
TASK_MODALITIES = {
    'toy2d_position_camera': ('position', 'camera'),
    'toy2d_front_back': ('front_camera', 'back_camera'),
    'toy2d_x_y': ('x_position', 'y_position'),
}


def check(task, modalities=None):
  """The requested modalities (None: all) of ``task``; ValueError naming the valid ones."""
  if task not in TASK_MODALITIES:
    raise ValueError(f'Unknown toy2d task {task!r}; valid: {", ".join(TASKS)}.')
  available = TASK_MODALITIES[task]
  modalities = available if modalities is None else tuple(modalities)
  bad = [m for m in modalities if m not in available]
  if bad or not modalities:
    raise ValueError(f'Task {task} has modalities {", ".join(available)}; '
                     f'got {list(modalities)}.')
  return modalities


_IMAGE_MODALITIES = ('camera', 'front_camera', 'back_camera')
_VECTOR_SIZES = {'position': 2, 'x_position': 1, 'y_position': 1}

_FLOOR = np.array([0.55, 0.55, 0.55])
_GRID = np.array([0.45, 0.45, 0.45])
_ROBOT = np.array([0.85, 0.1, 0.1])
_SKY = np.array([0.75, 0.85, 0.95])
_GROUND = np.array([0.35, 0.3, 0.25])
# Per wall (north, south, east, west): phase offsets of the sinusoidal colour pattern.
_WALL_PHASES = np.array([[0.0, 2.1, 4.2], [1.0, 3.5, 5.5], [2.5, 0.5, 1.5], [4.0, 5.0, 0.2]])
_WALL_FREQ = np.array([3.0, 5.0, 2.0])


class Toy2DWorld(dm_env.Environment):
  """A point robot in ``[-1, 1]^2`` seen by one of the paper's sensor pairs."""
  def __init__(self, task, size=(64, 64), modalities=None, seed=None, step_size=0.1,
               robot_radius=0.12, sensor_noise=0.01, pixel_noise=2.0, fov=90.0, goal=(0.5, 0.5)):
    modalities = check(task, modalities)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 8:
      raise ValueError(f'size must be (height, width) with both >= 8, got {size}.')
    if not 0 < fov < 180:
      raise ValueError(f'fov must be in (0, 180) degrees, got {fov}.')
    self.task = task
    self.modalities = modalities
    self._size = size
    self._step_size = float(step_size)
    self._radius = float(robot_radius)
    self._sensor_noise = float(sensor_noise)
    self._pixel_noise = float(pixel_noise)
    self._fov = np.deg2rad(float(fov))
    self._goal = np.asarray(goal, np.float64)
    self._rng = np.random.default_rng(seed)
    self._pos = np.zeros(2)
    self._need_reset = True

  # --- dm_env API -----------------------------------------------------------
  def observation_spec(self):
    spec = {}
    for m in self.modalities:
      if m in _IMAGE_MODALITIES:
        spec[m] = specs.Array(self._size + (3,), np.uint8, name=m)
      else:
        spec[m] = specs.Array((_VECTOR_SIZES[m],), np.float32, name=m)
    spec['state'] = specs.Array((2,), np.float32, name='state')
    return spec

  def action_spec(self):
    return specs.BoundedArray((2,), np.float32, -1.0, 1.0, name='action')

  def reset(self):
    lim = 1.0 - self._radius
    self._pos = self._rng.uniform(-lim, lim, size=2)
    self._need_reset = False
    return dm_env.restart(self._observation())

  def step(self, action):
    if self._need_reset:
      return self.reset()
    action = np.asarray(action, np.float64).reshape(-1)
    if action.shape != (2,):
      raise ValueError(f'toy2d action must have shape (2,), got {action.shape}.')
    action = np.clip(action, -1.0, 1.0)
    lim = 1.0 - self._radius
    self._pos = np.clip(self._pos + self._step_size * action, -lim, lim)
    return dm_env.transition(self._reward(), self._observation())

  # --- helpers --------------------------------------------------------------
  @property
  def position(self):
    """True robot position, a copy (2,) float64."""
    return self._pos.copy()

  def set_position(self, position):
    """Teleport the robot (tests, dataset generation); clipped to the square."""
    lim = 1.0 - self._radius
    self._pos = np.clip(np.asarray(position, np.float64), -lim, lim)
    self._need_reset = False
    return self._observation()

  def _reward(self):
    d2 = float(np.sum((self._pos - self._goal)**2))
    return np.float32(np.exp(-d2 / (2 * 0.25**2)))

  def _observation(self):
    obs = {}
    for m in self.modalities:
      if m == 'camera':
        obs[m] = self._to_uint8(render_ceiling(self._pos, self._size, self._radius))
      elif m == 'front_camera':
        obs[m] = self._to_uint8(render_raycast(self._pos, np.pi / 2, self._size, self._fov))
      elif m == 'back_camera':
        obs[m] = self._to_uint8(render_raycast(self._pos, -np.pi / 2, self._size, self._fov))
      else:
        value = {'position': self._pos, 'x_position': self._pos[:1], 'y_position': self._pos[1:]}[m]
        noise = self._rng.normal(0.0, self._sensor_noise, size=value.shape)
        obs[m] = (value + noise).astype(np.float32)
    obs['state'] = self._pos.astype(np.float32)
    return obs

  def _to_uint8(self, image):
    image = image * 255.0
    if self._pixel_noise > 0:
      image = image + self._rng.normal(0.0, self._pixel_noise, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render_ceiling(pos, size, radius):
  """Top-down view of the square, (H, W, 3) float in [0, 1]; y points up."""
  h, w = size
  ys = 1.0 - (np.arange(h) + 0.5) * 2.0 / h  # row 0 is the top (y = +1)
  xs = -1.0 + (np.arange(w) + 0.5) * 2.0 / w
  gx, gy = np.meshgrid(xs, ys)
  grid = (np.abs(((gx + 1) * 2) % 1.0 - 0.5) > 0.46) | (np.abs(((gy + 1) * 2) % 1.0 - 0.5) > 0.46)
  image = np.where(grid[..., None], _GRID, _FLOOR)
  dist = np.sqrt((gx - pos[0])**2 + (gy - pos[1])**2)
  pixel = 2.0 / min(h, w)
  cover = np.clip((radius - dist) / pixel + 0.5, 0.0, 1.0)[..., None]
  return image * (1 - cover) + _ROBOT * cover


def _wall_colour(wall, u):
  """Colour (N, 3) of wall ``wall`` (0 N, 1 S, 2 E, 3 W) at coordinate ``u`` in [-1, 1]."""
  phase = _WALL_PHASES[wall]  # (N, 3)
  return 0.5 + 0.45 * np.sin(_WALL_FREQ * u[:, None] + phase)


def render_raycast(pos, heading, size, fov):
  """First-person view looking along ``heading`` (radians), (H, W, 3) float in [0, 1].

  One ray per image column hits a wall of the square at distance ``d``; the wall spans
  ``0.5 * H / (d cos(angle off-axis))`` rows around the horizon (soft edges, so the image
  changes continuously with the position).
  """
  h, w = size
  offsets = fov * (0.5 - (np.arange(w) + 0.5) / w)  # left column looks left
  angles = heading + offsets
  dx, dy = np.cos(angles), np.sin(angles)
  big = 1e9
  with np.errstate(divide='ignore', invalid='ignore'):
    t_x = np.where(dx > 0, (1 - pos[0]) / dx, np.where(dx < 0, (-1 - pos[0]) / dx, big))
    t_y = np.where(dy > 0, (1 - pos[1]) / dy, np.where(dy < 0, (-1 - pos[1]) / dy, big))
  hit_y = t_y <= t_x
  dist = np.minimum(t_x, t_y)
  hx, hy = pos[0] + dist * dx, pos[1] + dist * dy
  wall = np.where(hit_y, np.where(dy > 0, 0, 1), np.where(dx > 0, 2, 3))
  u = np.where(hit_y, hx, hy)
  colour = _wall_colour(wall, u)  # (W, 3)
  perp = np.maximum(dist * np.cos(offsets), 1e-3)
  half = 0.25 * h / perp  # half wall height in rows
  rows = (np.arange(h) + 0.5) - h / 2.0  # row offset from the horizon
  cover = np.clip(half[None, :] - np.abs(rows)[:, None] + 0.5, 0.0, 1.0)[..., None]
  background = np.where((rows < 0)[:, None, None], _SKY, _GROUND)
  background = np.broadcast_to(background, (h, w, 3))
  return background * (1 - cover) + colour[None, :, :] * cover


def load(task, *, size=(64, 64), modalities=None, seed=None, **options):
  """The raw toy environment (contract: ``mummi_tf/envs/<suite>.load``).

  ``options``: ``step_size`` (world units per unit action, 0.1), ``robot_radius``
  (0.12), ``sensor_noise`` (std of the position sensors, world units, 0.01),
  ``pixel_noise`` (std, 0..255 units, 2.0), ``fov`` (degrees, 90), ``goal`` ((0.5, 0.5)).
  """
  valid = {'step_size', 'robot_radius', 'sensor_noise', 'pixel_noise', 'fov', 'goal'}
  unknown = sorted(set(options) - valid)
  if unknown:
    raise ValueError(f'Unknown toy2d options {unknown}; valid: {", ".join(sorted(valid))}.')
  return Toy2DWorld(task, size=size, modalities=modalities, seed=seed, **options)
