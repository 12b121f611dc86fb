"""Table Wiping (robosuite Wipe, Panda, two cameras) and its MuJoCo >= 3.17 patches.

Everything that imports robosuite or renders runs once, in a fresh interpreter that never
imports TensorFlow (this file run as a script); the tests assert on the facts it prints.
Skipped only when robosuite is not installed (tools/install_robosuite.sh installs it).
"""
import importlib.util
import json
import os

import numpy as np
import pytest

from envs_helpers import ROOT, run_isolated

HAVE_ROBOSUITE = importlib.util.find_spec('robosuite') is not None
pytestmark = pytest.mark.skipif(
    not HAVE_ROBOSUITE, reason='robosuite is not installed (run tools/install_robosuite.sh)')

_JOINTS_XML = """
<mujoco><worldbody>
  <body pos="0 0 1"><freejoint name="free"/><geom size=".1" mass="1"/>
    <body pos=".2 0 0"><joint name="ball" type="ball"/><geom size=".05" mass=".3"/>
      <body pos=".2 0 0"><joint name="slide" type="slide" axis="1 0 0"/>
        <geom size=".05" mass=".2"/>
        <body pos=".2 0 0"><joint name="hinge" axis="0 1 0"/><geom size=".05" mass=".1"/>
  </body></body></body></body>
</worldbody></mujoco>"""


def _compat_facts():
  import mujoco
  from robosuite.utils.binding_utils import MjSim
  from mummi_tf.envs import robosuite_compat

  applied = robosuite_compat.apply()
  sim = MjSim.from_xml_string(_JOINTS_XML)
  m = sim.model._model
  addresses = {}
  for name, width in (('free', 7), ('ball', 4), ('slide', 1), ('hinge', 1)):
    j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)
    qpos, qvel = int(m.jnt_qposadr[j]), int(m.jnt_dofadr[j])
    want_qpos = qpos if width == 1 else [qpos, qpos + width]
    want_qvel = qvel if width == 1 else [qvel, qvel + {7: 6, 4: 3}[width]]
    got_qpos, got_qvel = sim.model.get_joint_qpos_addr(name), sim.model.get_joint_qvel_addr(name)
    addresses[name] = [
        list(np.ravel(got_qpos)) == list(np.ravel(want_qpos)),
        list(np.ravel(got_qvel)) == list(np.ravel(want_qvel))
    ]
  # The old-order mj_fullM the controller module now sees vs M assembled column by column
  # with mj_mulM (independent of mj_fullM).
  sim.data.qpos[7:11] = [0.9, 0.1, 0.3, 0.2]
  sim.forward()
  from robosuite.controllers.parts import controller as controller_module
  dense = np.zeros((m.nv, m.nv))
  controller_module.mujoco.mj_fullM(m, dense, sim.data.qM)
  columns = np.zeros((m.nv, m.nv))
  for i in range(m.nv):
    unit, out = np.eye(m.nv)[i], np.zeros(m.nv)
    mujoco.mj_mulM(m, sim.data._data, out, unit)
    columns[:, i] = out
  return dict(
      applied=sorted(applied),
      needs=[robosuite_compat.needs_mass_matrix_patch(),
             robosuite_compat.needs_joint_type_patch()], addresses=addresses, mass_err=float(
                 np.abs(dense - columns).max()), mass_scale=float(np.abs(columns).max()))


def _make_facts():
  """The workspace camera removed for a whole episode, through mummi_tf.envs.make."""
  import mummi_tf.envs as envs
  from mummi_tf.envs import robosuite_wipe
  env = envs.make('table_wiping', seed=1, process=False, remove=('workspace',), missing='none',
                  time_limit=16, domain_randomization=True)
  spec = env.observation_spec()
  ts, steps, workspace_max, hand_std, flags = env.reset(), 0, 0, [], set()
  inner = env
  while not isinstance(inner, robosuite_wipe.TableWiping):
    inner = inner._env  # the wrappers of mummi_tf.envs.wrappers
  base = inner.robosuite_env
  cam = base.sim.model.camera_name2id('agentview')
  cam_pos = [base.sim.model.cam_pos[cam].copy()]
  while True:
    workspace_max = max(workspace_max, int(ts.observation['workspace'].max()))
    hand_std.append(float(ts.observation['eye_in_hand'].std()))
    flags.add((float(ts.observation['workspace_flag']), float(ts.observation['eye_in_hand_flag'])))
    if ts.last():
      break
    ts = env.step(np.full(env.action_spec().shape, 0.3, np.float32))
    steps += 1
  env.reset()
  cam_pos.append(base.sim.model.cam_pos[cam].copy())
  env.close()
  return dict(
      keys=sorted(spec), steps=steps, workspace_max=workspace_max, hand_std_min=min(hand_std),
      flags=sorted(flags), camera_moved=float(np.abs(cam_pos[1] - cam_pos[0]).max()))


def _load_facts():
  import mujoco
  from mummi_tf.envs import robosuite_wipe

  env = robosuite_wipe.load('table_wiping', seed=0)
  base = env.robosuite_env
  spec = env.observation_spec()
  ts = env.reset()
  obs = ts.observation
  images = {m: obs[m] for m in robosuite_wipe.MODALITIES}
  site = base.robots[0].eef_site_id['right']
  eef0, state0 = base.sim.data.site_xpos[site].copy(), obs['state'].copy()
  rewards = []
  for _ in range(4):  # +x, then +z: the OSC controller moves the end effector there.
    ts = env.step(np.array([1, 0, 0, 0, 0, 0], np.float32))
    rewards.append(ts.reward)
  eef1 = base.sim.data.site_xpos[site].copy()
  for _ in range(4):
    ts = env.step(np.array([0, 0, 1, 0, 0, 0], np.float32))
  eef2 = base.sim.data.site_xpos[site].copy()
  controller = base.robots[0].part_controllers['right']
  full = np.zeros((base.sim.model.nv, base.sim.model.nv))
  mujoco.mj_fullM(base.sim.model._model, base.sim.data._data, full)
  index = controller.qvel_index
  mass_err = float(np.abs(controller.mass_matrix - full[np.ix_(index, index)]).max())

  # Mesh simplification: only visual meshes change, geoms stay in place, physics unchanged.
  xml = base.model.get_xml()
  small, before, after = robosuite_wipe.decimated_model(xml, 0.01)
  exact = mujoco.MjModel.from_xml_string(xml)
  bbox_err = 0.0
  for g in range(exact.ngeom):
    if exact.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
      boxes = []
      for model in (exact, small):
        i = model.geom_dataid[g]
        v = model.mesh_vert[model.mesh_vertadr[i]:model.mesh_vertadr[i] + model.mesh_vertnum[i]]
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.geom_quat[g])
        p = v @ rot.reshape(3, 3).T + model.geom_pos[g]
        boxes.append(np.concatenate([p.min(0), p.max(0)]))
      bbox_err = max(bbox_err, float(np.abs(boxes[0] - boxes[1]).max()))
  colliding = (exact.geom_contype > 0) | (exact.geom_conaffinity > 0)
  collision_same = bool(
      np.array_equal(exact.geom_size[colliding], small.geom_size[colliding]) and
      np.array_equal(exact.body_mass, small.body_mass) and
      np.array_equal(exact.body_inertia, small.body_inertia))

  # Orientation: our workspace image vs MuJoCo's own Renderer (row 0 = top) of the same
  # scene. Done last: the Renderer's GL context replaces robosuite's current one.
  model, data = base.sim.model._model, base.sim.data._data
  env_step_image = np.asarray(ts.observation['workspace'], np.float64)
  renderer = mujoco.Renderer(model, 64, 64)
  option = mujoco.MjvOption()
  option.geomgroup[0] = 0  # robosuite shows visual geoms (group 1) only
  renderer.update_scene(data, 'agentview', scene_option=option)
  reference = renderer.render().astype(np.float64)
  renderer.close()

  def corr(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

  result = dict(
      keys=sorted(spec), shapes={
          k: list(s.shape) for k, s in spec.items()
      }, dtypes={
          k: str(s.dtype) for k, s in spec.items()
      }, obs_ok=all(
          obs[k].shape == s.shape and obs[k].dtype == s.dtype for k, s in spec.items()), action=[
              list(map(float,
                       env.action_spec().minimum)),
              list(map(float,
                       env.action_spec().maximum)),
              str(env.action_spec().dtype)
          ], image_std={
              m: float(v.std()) for m, v in images.items()
          }, image_colours={
              m: int(len(np.unique(v.reshape(-1, 3), axis=0))) for m, v in images.items()
          }, cameras_differ=float(
              np.abs(images['workspace'].astype(int) - images['eye_in_hand']).mean()),
      state_change=float(np.abs(ts.observation['state'] - state0).max()), rewards_finite=bool(
          np.all(np.isfinite(rewards))),
      eef_dx=float(eef1[0] - eef0[0]), eef_dz=float(eef2[2] - eef1[2]), mass_err=mass_err, faces=[
          before, after
      ], bbox_err=bbox_err, collision_same=collision_same, corr_upright=corr(
          env_step_image, reference), corr_flipped=corr(env_step_image[::-1], reference))
  env.close()
  return result


@pytest.fixture(scope='module')
def facts():
  return run_isolated(os.path.abspath(__file__), timeout=240)


def test_compat_patches(facts):
  compat = facts['compat']
  # Both patches are needed on this MuJoCo and applied; each makes robosuite correct.
  assert compat['needs'] == [True, True]
  assert compat['applied'] == ['joint_type', 'mass_matrix']
  assert compat['addresses'] == {j: [True, True] for j in ('free', 'ball', 'slide', 'hinge')}
  assert compat['mass_err'] < 1e-9 * max(1.0, compat['mass_scale'])
  # The OSC controller's mass matrix is MuJoCo's (the patched call site in use).
  assert facts['load']['mass_err'] < 1e-9


def test_cameras_spec_and_content(facts):
  load = facts['load']
  assert load['keys'] == ['eye_in_hand', 'state', 'workspace']
  assert load['shapes']['workspace'] == [64, 64, 3] and load['shapes']['eye_in_hand'] == [64, 64, 3]
  assert load['dtypes'] == {'workspace': 'uint8', 'eye_in_hand': 'uint8', 'state': 'float32'}
  assert load['shapes']['state'] == [55]
  assert load['obs_ok']
  assert load['action'] == [[-1.0] * 6, [1.0] * 6, 'float32']
  for m in ('workspace', 'eye_in_hand'):  # real scenes, not blank or noise-free frames
    assert load['image_std'][m] > 10, load['image_std']
    assert load['image_colours'][m] > 20, load['image_colours']
  assert load['cameras_differ'] > 10


def test_images_upright(facts):
  # Matches MuJoCo's own upright render of the same camera; the flipped image does not.
  load = facts['load']
  assert load['corr_upright'] > 0.9, load
  assert load['corr_upright'] > load['corr_flipped'] + 0.2, load


def test_step_moves_robot_and_changes_state(facts):
  load = facts['load']
  assert load['state_change'] > 1e-3
  assert load['rewards_finite']
  assert load['eef_dx'] > 0.02 and load['eef_dz'] > 0.02, load  # OSC delta actions, metres


def test_mesh_simplification_keeps_geometry(facts):
  load = facts['load']
  before, after = load['faces']
  assert after < 0.5 * before
  assert load['bbox_err'] < 0.02  # metres: within two 1 cm cells
  assert load['collision_same']


def test_make_removes_workspace_camera_for_whole_episode(facts):
  made = facts['make']
  assert made['keys'] == ['eye_in_hand', 'eye_in_hand_flag', 'state', 'workspace', 'workspace_flag']
  assert made['steps'] == 8  # time_limit 16 env steps / action repeat 2
  assert made['flags'] == [[0.0, 1.0]]  # workspace missing at every step, hand camera present
  assert made['workspace_max'] == 0
  assert made['hand_std_min'] > 5
  assert made['camera_moved'] > 0  # domain randomisation re-drew the camera pose at reset


def test_table_wiping_gin():
  import gin
  import mummi_tf.envs as envs
  from mummi_tf.model import world_model  # noqa: F401  (their configurables)
  from mummi_tf.run import evaluation
  from mummi_tf.envs import missing
  gin.parse_config_file(os.path.join(ROOT, 'gin', 'table_wiping.gin'))
  assert gin.query_parameter('WorldModel.fused') == 256
  assert missing.resolve_rate('paper', gin.query_parameter('mummi_tf.envs.make.missing')) == 0.375
  # The suite's gin bindings reach the worker as explicit load() arguments.
  defaults = envs.suite_defaults('robosuite_wipe')
  assert defaults['domain_randomization'] is True and defaults['randomize_every_n_steps'] == 0
  conditions = evaluation.conditions()
  assert conditions == {
      'none': {
          'missing': 'none'
      },
      'medium': {
          'missing': 'medium'
      },
      'robot_camera_only': {
          'missing': 'none',
          'remove': ('workspace',)
      },
      'robot_camera_only_medium': {
          'missing': 'medium',
          'remove': ('workspace',)
      }
  }
  assert world_model.WorldModel  # the binding names a real configurable


def test_load_rejects_bad_input():
  from mummi_tf.envs import robosuite_wipe
  with pytest.raises(ValueError, match='valid: table_wiping'):
    robosuite_wipe.load('table_cleaning')
  with pytest.raises(ValueError, match='workspace, eye_in_hand'):
    robosuite_wipe.TableWiping(None, modalities=('rgb',))


if __name__ == '__main__':
  out = {'compat': _compat_facts(), 'make': _make_facts(), 'load': _load_facts()}
  print(json.dumps(out))
