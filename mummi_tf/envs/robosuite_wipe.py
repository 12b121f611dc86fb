"""Table Wiping (paper Sec. VI, Table II): robosuite's ``Wipe`` with a Panda and two cameras.

Suite module (contract: docs/ARCHITECTURE.md). Task ``table_wiping``; modalities

* ``workspace`` (H, W, 3) uint8: robosuite's ``agentview`` camera, in front of the robot
  looking at the table (the paper's "workspace camera");
* ``eye_in_hand`` (H, W, 3) uint8: ``robot0_eye_in_hand``, mounted on the Panda's wrist
  (the paper's "camera mounted on the robot");
* ``state`` (55,) float32 (diagnostics only): robosuite's ``robot0_proprio-state`` (47:
  joint cos/sin/vel, end-effector position and quaternions) followed by its condensed
  ``object-state`` (8: wipe radius, centroid of the remaining markings, and the
  gripper-to-centroid vector).

The paper never published controller, horizon or reward settings, so every setting is
robosuite 1.5.2's default for ``Wipe`` with a Panda, and every one is a keyword of the
gin-configurable :func:`load` (``mummi_tf.envs.robosuite_wipe.load.<name> = value`` in a gin
file, or the same keyword passed to ``mummi_tf.envs.make``):

=============================  ===================================================
setting                        default (robosuite 1.5.2 unless marked)
=============================  ===================================================
robot / gripper                ``Panda`` / ``WipingGripper`` (Wipe's only gripper)
controller                     the Panda's default composite controller ``BASIC``
                               with an ``OSC_POSE`` arm: 6-D delta action in
                               [-1, 1] scaled to +-0.05 m position and +-0.5 rad
                               axis-angle per step, kp 150, critical damping,
                               fixed impedance, base frame
control frequency              20 Hz (25 physics steps of 2 ms per agent step,
                               ``lite_physics``)
horizon                        1000 control steps (50 s); robosuite's ``done`` at
                               the horizon is a truncation (discount 1)
early termination              on (robosuite's ``_check_terminated``: arm
                               collision with the table, joint limit, or all
                               markings wiped) -- a termination (discount 0)
reward                         dense shaping on (``reward_shaping=True``),
                               ``reward_scale=1.0`` (robosuite normalises the
                               return by its maximum), ``DEFAULT_WIPE_CONFIG``:
                               100 markings, 50 per wiped marking, 0.01 per
                               contact, -10 arm collision / joint limit, 0.05 x
                               excess force over 60 N, distance shaping x5
markings                       randomised at every reset (robosuite)
cameras                        ``agentview`` and ``robot0_eye_in_hand``, OpenCV
                               image convention (row 0 = top; robosuite's own
                               default ``opengl`` is upside down)
hard reset                     **off** (ours; robosuite: on): the model and the
                               GL context are built once; reset 1.4 s -> ~0.1 s
rendering (ours, for speed;    multisampling off (MuJoCo: 4x); cylinders/spheres
all CPU time is geometry)      tessellated 16 x 2 (MuJoCo: 28 x 16; the 100
                               textured wipe markings cost as much as the Panda);
                               visual-only meshes simplified by 1 cm vertex
                               clustering (Panda + pedestal 152 k -> 26 k faces;
                               collision geometry untouched). 64x64 images differ
                               from robosuite's meshes by ~1 / 255 on average
domain randomisation           robosuite's ``DomainRandomizationWrapper``,
                               **off** here, on in ``gin/table_wiping.gin``:
                               camera pose / fovy, lighting and dynamics (the
                               wrapper's default ranges), re-drawn at each reset
                               (``randomize_every_n_steps = 0``; the wrapper's
                               own default 1 re-draws every step). Dynamics
                               leave body poses alone (the default 1.5 mm shifts
                               made the Panda touch its mount, which Wipe ends
                               as a collision at step 1 in half the episodes).
                               Colour and texture randomisation stay off:
                               robosuite 1.5.2's ``TextureModder`` asserts
                               MuJoCo == 3.1.1.
=============================  ===================================================

robosuite 1.5.2 breaks on MuJoCo >= 3.17; :mod:`mummi_tf.envs.robosuite_compat` patches
the two broken call sites when the task is loaded. robosuite is imported lazily, so this
module imports (and lists its ``TASKS``) without robosuite installed. It never imports
TensorFlow: rendering (EGL/OSMesa, ``MUJOCO_GL``, default ``egl``) runs in the
environment worker process.

:func:`benchmark` measures milliseconds per agent step and splits them into physics,
rendering and robosuite bookkeeping (used by ``make bench``). Measured on the 2-core CPU
of the development machine (EGL, llvmpipe; shared with other jobs, so wall times are
upper bounds), both 64x64 cameras, per agent step (one robosuite control step):

* these defaults: 23-26 ms CPU, 47-54 ms wall (19-21 steps/s): physics 2.5 ms, rendering
  34-38 ms, bookkeeping (OSC controller, observables, reward) 11-14 ms; reset 20-70 ms;
  domain randomisation adds nothing measurable per step.
* robosuite's meshes and MuJoCo's 28 x 16 tessellation (multisampling still off):
  79 ms CPU, rendering ~200 ms wall under the same load (4.5 steps/s).
* robosuite's own defaults (hard reset, 4x multisampling): 186 ms CPU, reset ~4 s.
"""
import dataclasses
import os
import time

import dm_env
from dm_env import specs
import gin
import numpy as np

TASKS = ('table_wiping',)
MODALITIES = ('workspace', 'eye_in_hand')


@dataclasses.dataclass(frozen=True)
class WipeConfig:
  """robosuite settings of the Table Wiping task; the defaults live in :func:`load`."""
  robot: str
  controller: str | None
  control_freq: float
  horizon: int
  reward_scale: float | None
  reward_shaping: bool
  workspace_camera: str
  hand_camera: str
  hard_reset: bool
  multisample: bool
  render_slices: int
  render_stacks: int
  render_mesh_cell: float
  domain_randomization: bool
  randomize_camera: bool
  randomize_lighting: bool
  randomize_dynamics: bool
  randomize_every_n_steps: int


def check(task, modalities=None):
  """The requested modalities (None: both cameras); ValueError naming the valid ones."""
  if task not in TASKS:
    raise ValueError(f'Unknown robosuite task {task!r}; valid: {", ".join(TASKS)}.')
  modalities = MODALITIES if modalities is None else tuple(modalities)
  bad = [m for m in modalities if m not in MODALITIES]
  if bad or not modalities or len(set(modalities)) != len(modalities):
    raise ValueError(f'table_wiping modalities must be a non-empty subset of '
                     f'{", ".join(MODALITIES)}; got {list(modalities)}.')
  return modalities


def _import_robosuite():
  """Imports robosuite with OpenCV images and the MuJoCo compatibility patches."""
  os.environ.setdefault('MUJOCO_GL', 'egl')
  try:
    import robosuite  # pylint: disable=import-outside-toplevel
    import robosuite.macros as macros  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError('table_wiping needs robosuite 1.5.2: run tools/install_robosuite.sh '
                      f'(pip install robosuite would break numpy/mujoco): {e}') from e
  from mummi_tf.envs import robosuite_compat  # pylint: disable=import-outside-toplevel
  macros.IMAGE_CONVENTION = 'opencv'  # Read when the camera observables are built.
  robosuite_compat.apply()
  return robosuite


def cluster_decimate(vertices, faces, cell):
  """Vertex-clustering mesh simplification on a grid of ``cell`` metres.

  Vertices in one grid cell merge into their mean; faces that collapse or repeat are
  dropped, and so are vertices no face uses. Returns ``(vertices (V', 3), faces (F', 3))``.
  """
  keys = np.floor(np.asarray(vertices, np.float64) / cell).astype(np.int64)
  _, cluster = np.unique(keys, axis=0, return_inverse=True)
  cluster = cluster.reshape(-1)
  count = np.bincount(cluster)
  merged = np.zeros((count.size, 3))
  np.add.at(merged, cluster, vertices)
  merged /= count[:, None]
  f = cluster[np.asarray(faces)]
  f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]
  _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
  f = f[np.sort(first)]
  used, f = np.unique(f, return_inverse=True)
  return merged[used], f.reshape(-1, 3)


def decimated_model(xml, cell, min_faces=1000):
  """Compiles ``xml`` with its large visual-only meshes simplified (:func:`cluster_decimate`).

  Only meshes that no colliding geom uses and that have at least ``min_faces`` faces
  change, so physics (collision, masses, inertias) is untouched. MuJoCo re-centres every
  mesh at compile time; the compiled vertices are mapped back to the mesh file's frame
  (``mesh_quat``, ``mesh_pos``, ``scale``) before simplification so geoms stay in place.
  Returns ``(model, faces_before, faces_after)``.
  """
  import mujoco  # pylint: disable=import-outside-toplevel
  full = mujoco.MjModel.from_xml_string(xml)
  spec = mujoco.MjSpec.from_string(xml)
  visual_only = np.ones(full.nmesh, bool)
  for g in range(full.ngeom):
    if full.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and (full.geom_contype[g] or
                                                            full.geom_conaffinity[g]):
      visual_only[full.geom_dataid[g]] = False
  before = after = 0
  for mesh in spec.meshes:
    i = mujoco.mj_name2id(full, mujoco.mjtObj.mjOBJ_MESH, mesh.name)
    num_faces = int(full.mesh_facenum[i])
    before += num_faces
    if not visual_only[i] or num_faces < min_faces:
      after += num_faces
      continue
    start, num = full.mesh_vertadr[i], full.mesh_vertnum[i]
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, full.mesh_quat[i])
    vertices = full.mesh_vert[start:start + num] @ rotation.reshape(3, 3).T + full.mesh_pos[i]
    faces = full.mesh_face[full.mesh_faceadr[i]:full.mesh_faceadr[i] + num_faces]
    vertices, faces = cluster_decimate(vertices, faces, cell)
    if len(vertices) < 4 or len(faces) < 4:
      after += num_faces
      continue
    after += len(faces)
    mesh.file = ''
    mesh.uservert = (vertices / np.asarray(mesh.scale)).ravel().tolist()
    mesh.userface = faces.ravel().tolist()
    for field in ('usernormal', 'usertexcoord', 'userfacenormal', 'userfacetexcoord'):
      setattr(mesh, field, [])
  return spec.compile(), before, after


def _wipe_class(robosuite, config):
  """``Wipe`` with the render settings of ``config`` applied before its GL context exists."""
  render_mesh_cell = float(config.render_mesh_cell)
  from robosuite.utils.binding_utils import MjSim  # pylint: disable=import-outside-toplevel

  class _FastRenderWipe(robosuite.environments.manipulation.wipe.Wipe):
    def _initialize_sim(self, xml_string=None):
      if not render_mesh_cell:
        super()._initialize_sim(xml_string)
      else:  # robosuite's _initialize_sim with the model compiled by decimated_model.
        xml = xml_string if xml_string else self.model.get_xml()
        for processor in self._xml_processors:
          xml = processor(xml)
        model, self.render_faces_before, self.render_faces_after = decimated_model(
            xml, render_mesh_cell)
        self.sim = MjSim(model)
        self.sim.forward()
        self.initialize_time(self.control_freq)
      # The offscreen GL context (and its primitive meshes) is created after this, in
      # _reset_internal, so these settings take effect there.
      quality = self.sim.model.vis.quality
      if not config.multisample:
        quality.offsamples = 0
      quality.numslices = int(config.render_slices)
      quality.numstacks = int(config.render_stacks)

  return _FastRenderWipe


class TableWiping(dm_env.Environment):
  """robosuite ``Wipe`` as a ``dm_env.Environment`` emitting camera modalities and state."""
  def __init__(self, config, size=(64, 64), modalities=None, seed=None):
    modalities = check('table_wiping', modalities)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 8:
      raise ValueError(f'size must be (height, width) with both >= 8, got {size}.')
    self.modalities = modalities
    self.config = config
    self._size = size
    cameras = {'workspace': config.workspace_camera, 'eye_in_hand': config.hand_camera}
    self._image_keys = {m: f'{cameras[m]}_image' for m in modalities}

    robosuite = _import_robosuite()
    controller = robosuite.load_composite_controller_config(controller=config.controller,
                                                            robot=config.robot)
    wipe = _wipe_class(robosuite, config)
    self._base = wipe(robots=config.robot, controller_configs=controller, use_camera_obs=True,
                      use_object_obs=True, reward_scale=config.reward_scale,
                      reward_shaping=config.reward_shaping, has_renderer=False,
                      has_offscreen_renderer=True, control_freq=config.control_freq, horizon=int(
                          config.horizon), hard_reset=config.hard_reset, camera_names=[
                              cameras[m] for m in modalities
                          ], camera_heights=size[0], camera_widths=size[1], seed=seed)
    self._env = self._base
    if config.domain_randomization:
      from robosuite.wrappers import domain_randomization_wrapper as dr  # pylint: disable=import-outside-toplevel
      # The wrapper's default dynamics ranges also move every body by up to 1.5 mm and tilt
      # it; that puts the Panda's base in contact with its mount, which Wipe ends as an
      # arm collision at the first step of about half the episodes. Bodies stay in place.
      dynamics = dict(dr.DEFAULT_DYNAMICS_ARGS, randomize_position=False,
                      randomize_quaternion=False)
      self._env = dr.DomainRandomizationWrapper(
          self._base, seed=seed, randomize_color=False, randomize_camera=config.randomize_camera,
          randomize_lighting=config.randomize_lighting,
          randomize_dynamics=config.randomize_dynamics, dynamics_randomization_args=dynamics,
          randomize_on_reset=True, randomize_every_n_steps=int(config.randomize_every_n_steps))
    low, high = self._base.action_spec
    self._action_spec = specs.BoundedArray(low.shape, np.float32, low.astype(np.float32),
                                           high.astype(np.float32), name='action')
    self._state_size = None
    self._need_reset = True

  # --- dm_env API -------------------------------------------------------------
  def observation_spec(self):
    if self._state_size is None:
      self._state_size = self._state(self._env.observation_spec()).shape[0]
    spec = {m: specs.Array(self._size + (3,), np.uint8, name=m) for m in self.modalities}
    spec['state'] = specs.Array((self._state_size,), np.float32, name='state')
    return spec

  def action_spec(self):
    return self._action_spec

  def reset(self):
    self._need_reset = False
    return dm_env.restart(self._observation(self._env.reset()))

  def step(self, action):
    if self._need_reset:
      return self.reset()
    action = np.asarray(action, np.float64).reshape(-1)
    if action.shape != self._action_spec.shape:
      raise ValueError(f'table_wiping action must have shape {self._action_spec.shape}, '
                       f'got {action.shape}.')
    action = np.clip(action, self._action_spec.minimum, self._action_spec.maximum)
    obs, reward, done, _ = self._env.step(action)
    observation = self._observation(obs)
    if not done:
      return dm_env.transition(float(reward), observation)
    self._need_reset = True
    if self._base._check_terminated():  # pylint: disable=protected-access
      return dm_env.termination(float(reward), observation)
    return dm_env.truncation(float(reward), observation)

  def close(self):
    self._env.close()

  # --- helpers ----------------------------------------------------------------
  @property
  def robosuite_env(self):
    """The unwrapped robosuite ``Wipe`` environment."""
    return self._base

  def _state(self, obs):
    return np.concatenate([obs['robot0_proprio-state'], obs['object-state']]).astype(np.float32)

  def _observation(self, obs):
    out = {m: np.ascontiguousarray(obs[key], dtype=np.uint8) for m, key in self._image_keys.items()}
    out['state'] = self._state(obs)
    return out


@gin.configurable(module='mummi_tf.envs.robosuite_wipe')
def load(task, *, size=(64, 64), modalities=None, seed=None, robot='Panda', controller=None,
         control_freq=20.0, horizon=1000, reward_scale=1.0, reward_shaping=True,
         workspace_camera='agentview', hand_camera='robot0_eye_in_hand', hard_reset=False,
         multisample=False, render_slices=16, render_stacks=2, render_mesh_cell=0.01,
         domain_randomization=False, randomize_camera=True, randomize_lighting=True,
         randomize_dynamics=True, randomize_every_n_steps=0):
  """The raw Table Wiping environment (contract: ``mummi_tf/envs/<suite>.load``).

  Args:
    task: ``'table_wiping'``.
    size: (H, W) of both cameras, pixels.
    modalities: subset of ``MODALITIES`` (None: both); an unlisted camera is not rendered.
    seed: seeds robosuite (marking placement, initial joint noise) and the randomiser.
    robot: robosuite robot name.
    controller: composite controller name or JSON path; None = the robot's default
      (Panda: ``BASIC`` with an ``OSC_POSE`` arm).
    control_freq: agent steps per simulated second, Hz.
    horizon: robosuite episode length, control steps (ends as a truncation).
    reward_scale: robosuite's normalised reward scale (None: unnormalised reward).
    reward_shaping: robosuite's dense reward shaping.
    workspace_camera / hand_camera: robosuite camera names of the two modalities.
    hard_reset: rebuild the MuJoCo model and GL context at every reset (slow).
    multisample: keep MuJoCo's 4x multisample anti-aliasing (slow on CPU).
    render_slices / render_stacks: MuJoCo ``visual/quality`` numslices / numstacks that
      tessellate rendered cylinders, capsules and spheres (MuJoCo: 28 / 16). The 100 wipe
      markings are textured cylinders that cost as much as the whole Panda at 28 x 16;
      16 x 2 changes the 64x64 images by 0.14 / 255 on average.
    render_mesh_cell: > 0 simplifies the large visual-only meshes (Panda links, pedestal)
      by vertex clustering on a grid of this many metres (:func:`decimated_model`;
      0 = robosuite's meshes). Collision geometry, masses and inertias never change.
    domain_randomization: wrap in robosuite's ``DomainRandomizationWrapper``.
    randomize_camera / randomize_lighting / randomize_dynamics: what it randomises
      (the wrapper's default ranges; colours stay off, see the module docstring).
    randomize_every_n_steps: 0 = re-draw only at reset; n = also every n agent steps.
  """
  if task not in TASKS:
    raise ValueError(f'Unknown robosuite task {task!r}; valid: {", ".join(TASKS)}.')
  config = WipeConfig(
      robot=robot, controller=controller, control_freq=float(control_freq), horizon=int(horizon),
      reward_scale=reward_scale, reward_shaping=bool(reward_shaping),
      workspace_camera=workspace_camera, hand_camera=hand_camera, hard_reset=bool(hard_reset),
      multisample=bool(multisample), render_slices=int(render_slices),
      render_stacks=int(render_stacks), render_mesh_cell=float(render_mesh_cell),
      domain_randomization=bool(domain_randomization), randomize_camera=bool(randomize_camera),
      randomize_lighting=bool(randomize_lighting), randomize_dynamics=bool(randomize_dynamics),
      randomize_every_n_steps=int(randomize_every_n_steps))
  return TableWiping(config, size=size, modalities=modalities, seed=seed)


def benchmark(num_steps=50, seed=0, **load_kwargs):
  """Milliseconds per agent step of random actions, split by where the time goes.

  Times robosuite's ``MjSim`` calls on this instance: ``physics`` = ``step``/``step1``/
  ``step2``/``forward``, ``render`` = ``render`` (offscreen camera draws + pixel reads);
  ``bookkeeping`` = the rest of a step (controller, observables, reward, our adapter).
  Returns a dict of floats: ``reset_ms``, ``step_ms``, ``physics_ms``, ``render_ms``,
  ``bookkeeping_ms``, ``steps_per_s`` (wall clock) and ``cpu_step_ms`` (CPU time of this
  process, all threads: less sensitive to other load on a shared machine).
  """
  if load_kwargs.get('hard_reset'):
    raise ValueError('benchmark needs hard_reset=False (a hard reset replaces the timed MjSim).')
  env = load('table_wiping', seed=seed, **load_kwargs)
  sim = env.robosuite_env.sim
  spent = {'physics': 0.0, 'render': 0.0}

  def timed(fn, bucket):
    def wrapper(*args, **kwargs):
      start = time.perf_counter()
      try:
        return fn(*args, **kwargs)
      finally:
        spent[bucket] += time.perf_counter() - start

    return wrapper

  for name in ('step', 'step1', 'step2', 'forward'):
    setattr(sim, name, timed(getattr(sim, name), 'physics'))
  sim.render = timed(sim.render, 'render')
  rng = np.random.default_rng(seed)
  spec = env.action_spec()
  try:
    env.reset()  # The first reset compiles numba kernels; time the second.
    start = time.perf_counter()
    env.reset()
    reset_ms = 1e3 * (time.perf_counter() - start)
    spent.update(physics=0.0, render=0.0)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(num_steps):
      if env.step(rng.uniform(spec.minimum, spec.maximum).astype(np.float32)).last():
        env.reset()
    total = time.perf_counter() - start
    cpu_total = time.process_time() - cpu_start
  finally:
    env.close()
  step_ms = 1e3 * total / num_steps
  physics_ms = 1e3 * spent['physics'] / num_steps
  render_ms = 1e3 * spent['render'] / num_steps
  return {
      'reset_ms': reset_ms,
      'step_ms': step_ms,
      'physics_ms': physics_ms,
      'render_ms': render_ms,
      'bookkeeping_ms': step_ms - physics_ms - render_ms,
      'steps_per_s': 1e3 / step_ms,
      'cpu_step_ms': 1e3 * cpu_total / num_steps
  }
