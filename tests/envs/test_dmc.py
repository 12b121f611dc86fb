"""Natural MuJoCo environments, checked in a TF-free interpreter (render_checks.py)."""
import os

import numpy as np
import pytest

from envs_helpers import run_isolated

TASKS = ('walker_stand', 'walker_walk', 'walker_run', 'finger_spin', 'cup_catch')
TOUCH = {'walker_stand': 2, 'walker_walk': 2, 'walker_run': 2, 'finger_spin': 2, 'cup_catch': 1}


@pytest.fixture(scope='module')
def facts():
  return run_isolated(os.path.join(os.path.dirname(__file__), 'render_checks.py'))


@pytest.mark.parametrize('task', TASKS)
def test_shapes_dtypes_flags(facts, task):
  f = facts['spec'][task]
  assert f['all_ok'], 'an observation disagrees with its spec, or a dropped one is not zero'
  assert f['keys'] == sorted([
      'rgb', 'depth', 'touch', 'state', 'rgb_flag', 'depth_flag', 'touch_flag'
  ])
  assert f['shapes']['rgb'] == [64, 64, 3] and f['dtypes']['rgb'] == 'uint8'
  assert f['shapes']['depth'] == [64, 64, 1] and f['dtypes']['depth'] == 'uint8'
  assert f['shapes']['touch'] == [TOUCH[task]] and f['dtypes']['touch'] == 'float32'
  assert f['shapes']['rgb_flag'] == [] and f['dtypes']['touch_flag'] == 'float32'
  assert f['flags'] == [0.0, 1.0]
  assert f['action'] == [-1.0, 1.0, 'float32']


@pytest.mark.parametrize('task', ['walker_walk', 'finger_spin', 'cup_catch'])
def test_one_pass_matches_dm_control_renders(facts, task):
  f = facts['layers'][task]
  assert f['rgb_equal'], 'rgb differs from physics.render'
  assert f['depth_max_err'] <= 1
  assert f['mask_equal'], 'background mask differs from dm_control segmentation'
  assert f['robot_pixels'] > 20 and f['floor_pixels'] > 100 and f['sky_pixels'] > 100
  assert f['floor_names'] in (['floor'], ['ground'])
  assert f['sky_depth'] == 255 and 0 < f['robot_depth'] < 255


@pytest.mark.parametrize('task', ['walker_run', 'cup_catch'])
def test_background(facts, task):
  f = facts['background'][task]
  assert f['leaks'] == 0, 'the background changed robot pixels'
  assert f['covered'] > 0.95, 'sky/floor pixels not replaced by the background'
  assert f['changed'] > 3, 'the background does not change over time'
  assert f['split_diff'] > 20, 'train and test backgrounds look the same'


def test_walker_feet_touch(facts):
  f = facts['touch']['walker']
  assert f['air'] == [0.0, 0.0]
  assert min(f['floor']) > 0
  assert sum(f['floor']) == pytest.approx(f['weight'], rel=0.3)


def test_finger_tip_touch(facts):
  f = facts['touch']['finger']
  assert f['contact'] is not None and min(f['contact']) > 0
  assert f['zero_without_contact']


def test_cup_touch(facts):
  f = facts['touch']['cup']
  assert f['out'] == [0.0]
  assert f['in'][0] == pytest.approx(f['ball_weight'], rel=0.1)


def test_seeding_is_deterministic(facts):
  assert facts['determinism']['same'] and facts['determinism']['differ']


def test_shadow_option_changes_the_render(facts):
  assert facts['shadow_pixels'] > 50


def test_envs_never_import_tensorflow(facts):
  assert facts['tf_modules'] == []


def test_touch_normalisation():
  from mummi_tf.envs import touch
  out = touch.normalize(np.array([0.0, np.e - 1, -1e-9, 3000.0]))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out, [0.0, 1.0, 0.0, np.log1p(3000.0)], rtol=1e-6)
