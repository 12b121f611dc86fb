"""Rendering checks, run by test_dmc.py in a fresh interpreter that never imports TF.

Prints one JSON line of measured facts; the pytest side asserts on them.
"""
import json
import sys

import mujoco
import numpy as np

import mummi_tf.envs as envs
from mummi_tf.envs import dmc, natural_mujoco, render, touch

out = {}
MODALITIES = ('rgb', 'depth', 'touch')


def spec_check(task):
  env = envs.make(task, seed=3, process=False, shadows=False, missing='medium')
  spec = env.observation_spec()
  ok, flags = [], set()
  ts = env.reset()
  for _ in range(6):
    for key, s in spec.items():
      v = np.asarray(ts.observation[key])
      ok.append(v.shape == s.shape and v.dtype == s.dtype)
    for m in MODALITIES:
      flag = float(ts.observation[m + '_flag'])
      flags.add(flag)
      if flag == 0.0:
        ok.append(not np.any(ts.observation[m]))
    ts = env.step(np.zeros(env.action_spec().shape, np.float32))
  result = dict(
      all_ok=bool(all(ok)), flags=sorted(flags), keys=sorted(spec), shapes={
          k: list(s.shape) for k, s in spec.items()
      }, dtypes={
          k: str(s.dtype) for k, s in spec.items()
      }, action=[
          float(env.action_spec().minimum),
          float(env.action_spec().maximum),
          str(env.action_spec().dtype)
      ])
  env.close()
  return result


def layers_vs_dm_control(task):
  """Our one-pass rgb/depth and segmentation mask vs dm_control's separate renders."""
  env = dmc.load(task, seed=0, background='none', shadows=True)
  env.reset()
  for _ in range(5):
    env.step(np.zeros(env.action_spec().shape))
  physics = env.physics
  rgb, depth, background = env._renderer.render()
  ref_rgb = physics.render(64, 64, camera_id=0)
  ref_depth = physics.render(64, 64, camera_id=0, depth=True)
  seg = physics.render(64, 64, camera_id=0, segmentation=True)
  floors = render.background_geoms(physics.model)
  ref_bg = (seg[..., 0]
            == -1) | ((seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)) & np.isin(seg[..., 0], floors))
  clip = env._renderer.clip
  ref_depth_u8 = np.clip(ref_depth * 255.0 / clip, 0, 255).round()
  robot = (seg[..., 0] >= 0) & ~ref_bg
  floor_names = [physics.model.id2name(int(i), 'geom') for i in floors]
  env.close()
  return dict(
      rgb_equal=bool(np.array_equal(rgb, ref_rgb)), depth_max_err=float(
          np.abs(depth[..., 0].astype(float) - ref_depth_u8).max()), mask_equal=bool(
              np.array_equal(background, ref_bg)), robot_pixels=int(robot.sum()), floor_pixels=int(
                  (ref_bg & (seg[..., 0] >= 0)).sum()), sky_pixels=int(
                      (seg[..., 0] == -1).sum()), floor_names=floor_names, sky_depth=float(
                          np.median(depth[..., 0][seg[..., 0] == -1])), robot_depth=float(
                              np.median(depth[..., 0][robot])))


def background_checks(task):
  """Photos vs no background from identical states: only background pixels differ."""
  kw = dict(seed=5, shadows=False)
  plain, photo = dmc.load(task, background='none', **kw), dmc.load(task, **kw)
  test = dmc.load(task, split='test', **kw)
  covered, changed, leaks, split_diff = [], [], [], []
  frames = []
  a = plain.reset().observation
  b = photo.reset().observation
  c = test.reset().observation
  zero = np.zeros(plain.action_spec().shape)
  for _ in range(12):
    _, _, mask = plain._renderer.render()
    fg = ~mask
    leaks.append(int(np.any(a['rgb'][fg] != b['rgb'][fg])))
    covered.append(float(np.mean(np.any(a['rgb'] != b['rgb'], -1)[mask])))
    split_diff.append(float(np.mean(np.abs(b['rgb'].astype(int) - c['rgb'])[mask])))
    frames.append(b['rgb'])
    a, b, c = (e.step(zero).observation for e in (plain, photo, test))
  changed = float(np.mean(np.abs(frames[0].astype(int) - frames[-1])))
  for e in (plain, photo, test):
    e.close()
  return dict(
      leaks=sum(leaks), covered=float(np.mean(covered)), changed=changed, split_diff=float(
          np.mean(split_diff)))


def touch_walker():
  physics = natural_mujoco.build_physics('walker_walk')
  res = {}
  physics.named.data.qpos['rootz'] = 2.0
  physics.forward()
  res['air'] = touch.read_forces(physics, 'walker').tolist()
  with physics.reset_context():
    physics.data.qpos[:] = 0
  for _ in range(20):  # standing straight: both soles on the floor
    physics.step()
  res['floor'] = touch.read_forces(physics, 'walker').tolist()
  res['weight'] = float(physics.named.model.body_subtreemass['torso'] * 9.81)
  physics.free()
  return res


def touch_finger():
  physics = natural_mujoco.build_physics('finger_spin')
  rng = np.random.default_rng(0)
  found, zero_without_contact, distal = None, True, physics.model.name2id('distal', 'body')
  for _ in range(3000):
    with physics.reset_context():
      physics.named.data.qpos['proximal'] = rng.uniform(-1.9, 1.9)
      physics.named.data.qpos['distal'] = rng.uniform(-1.9, 1.9)
      physics.named.data.qpos['hinge'] = rng.uniform(-np.pi, np.pi)
    forces = touch.read_forces(physics, 'finger')
    bodies = {
        int(physics.model.geom_bodyid[g])
        for c in physics.data.contact[:physics.data.ncon]
        for g in (c.geom1, c.geom2)
    }
    if distal not in bodies and np.any(forces != 0):
      zero_without_contact = False
    if found is None and np.all(forces > 0):
      found = forces.tolist()
  physics.free()
  return dict(contact=found, zero_without_contact=zero_without_contact)


def touch_cup():
  physics = natural_mujoco.build_physics('cup_catch')
  res = {}
  with physics.reset_context():
    physics.named.data.qpos['ball_z'] = 0.0  # hanging below the cup on its string
  res['out'] = touch.read_forces(physics, 'ball_in_cup').tolist()
  with physics.reset_context():
    physics.named.data.qpos['ball_z'] = 0.34  # just above the cup bottom
  for _ in range(600):  # settle for 1.2 s
    physics.step()
  res['in'] = touch.read_forces(physics, 'ball_in_cup').tolist()
  res['ball_weight'] = float(physics.named.model.body_mass['ball'] * 9.81)
  physics.free()
  return res


def determinism(task):
  def run(seed):
    env = envs.make(task, seed=seed, process=False, shadows=False)
    obs = [env.reset().observation]
    rng = np.random.default_rng(0)
    for _ in range(8):
      obs.append(env.step(rng.uniform(-1, 1, env.action_spec().shape)).observation)
    env.close()
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}

  a, b, c = run(11), run(11), run(12)
  return dict(
      same=all(np.array_equal(a[k], b[k]) for k in a),
      differ=any(not np.array_equal(a[k], c[k]) for k in a))


def shadows_differ():
  a = dmc.load('walker_stand', seed=0, background='none', shadows=True)
  b = dmc.load('walker_stand', seed=0, background='none', shadows=False)
  ra, rb = a.reset().observation['rgb'], b.reset().observation['rgb']
  a.close(), b.close()
  return int(np.any(ra != rb, -1).sum())


assert tuple(natural_mujoco._TASKS) == dmc.TASKS
out['spec'] = {t: spec_check(t) for t in dmc.TASKS}
out['layers'] = {t: layers_vs_dm_control(t) for t in ('walker_walk', 'finger_spin', 'cup_catch')}
out['background'] = {t: background_checks(t) for t in ('walker_run', 'cup_catch')}
out['touch'] = dict(walker=touch_walker(), finger=touch_finger(), cup=touch_cup())
out['determinism'] = determinism('finger_spin')
out['shadow_pixels'] = shadows_differ()
bad = ('tensorflow', 'tf_keras', 'tensorflow_probability', 'keras')
out['tf_modules'] = sorted(m for m in sys.modules if m.split('.')[0] in bad)
print(json.dumps(out))
