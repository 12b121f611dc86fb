"""The toy 2-D world (mummi_tf/envs/toy2d.py) and the toy experiment (issue 7)."""
import json
import pathlib
import subprocess
import sys

import dm_env
import numpy as np
import pytest

from mummi_tf.envs import toy2d

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pixels(image):
  return np.asarray(image, np.float64)


def test_suite_contract_specs_and_observations():
  assert set(toy2d.TASKS) == set(toy2d.TASK_MODALITIES)
  for task in toy2d.TASKS:
    env = toy2d.load(task, size=(64, 64), seed=0)
    spec = env.observation_spec()
    assert set(spec) == set(toy2d.TASK_MODALITIES[task]) | {'state'}
    step = env.reset()
    assert step.first()
    for key, s in spec.items():
      value = step.observation[key]
      assert value.shape == s.shape and value.dtype == s.dtype, key
    action = env.action_spec()
    assert action.shape == (2,) and action.minimum == -1 and action.maximum == 1
  only = toy2d.load('toy2d_position_camera', modalities=['camera'], size=(32, 48))
  assert set(only.observation_spec()) == {'camera', 'state'}
  assert only.reset().observation['camera'].shape == (32, 48, 3)


def test_bad_input_names_valid_values():
  with pytest.raises(ValueError, match='toy2d_x_y'):
    toy2d.load('toy2d_nope')
  with pytest.raises(ValueError, match='position, camera'):
    toy2d.load('toy2d_position_camera', modalities=['front_camera'])
  with pytest.raises(ValueError, match='valid: '):
    toy2d.load('toy2d_x_y', speed=3)


def test_dynamics_follow_actions_and_stay_in_the_square():
  env = toy2d.load('toy2d_x_y', seed=1, step_size=0.1, robot_radius=0.1, sensor_noise=0.0)
  env.reset()
  env.set_position((0.0, 0.0))
  step = env.step(np.array([1.0, -0.5], np.float32))
  assert step.step_type == dm_env.StepType.MID
  np.testing.assert_allclose(step.observation['state'], [0.1, -0.05], atol=1e-6)
  # Noise-free sensors report one coordinate each.
  np.testing.assert_allclose(step.observation['x_position'], [0.1], atol=1e-6)
  np.testing.assert_allclose(step.observation['y_position'], [-0.05], atol=1e-6)
  for _ in range(30):
    step = env.step(np.array([1.0, 1.0], np.float32))
  np.testing.assert_allclose(step.observation['state'], [0.9, 0.9], atol=1e-6)
  # Reward peaks at the goal (0.5, 0.5).
  env.set_position((0.5, 0.5))
  near = env.step(np.zeros(2, np.float32)).reward
  env.set_position((-0.8, -0.8))
  far = env.step(np.zeros(2, np.float32)).reward
  assert near > 0.99 and far < 0.01


def test_position_sensor_is_noisy_position():
  env = toy2d.load('toy2d_position_camera', seed=0, sensor_noise=0.05)
  env.reset()
  obs = [env.set_position((0.3, -0.4))['position'] for _ in range(400)]
  np.testing.assert_allclose(np.mean(obs, 0), [0.3, -0.4], atol=0.01)
  assert np.all((0.04 < np.std(obs, 0)) & (np.std(obs, 0) < 0.06))


def test_ceiling_camera_image_moves_with_the_robot():
  env = toy2d.load('toy2d_position_camera', seed=0, pixel_noise=0.0)
  env.reset()

  def robot_centre(position):
    image = _pixels(env.set_position(position)['camera'])
    red = (image[..., 0] > 150) & (image[..., 1] < 80)
    rows, cols = np.nonzero(red)
    assert len(rows) > 10
    return rows.mean(), cols.mean()

  r0, c0 = robot_centre((-0.5, 0.0))
  r1, c1 = robot_centre((0.5, 0.0))
  r2, c2 = robot_centre((-0.5, 0.6))
  assert c1 - c0 == pytest.approx(32, abs=2)  # +1 in x = +32 columns at 64 px
  assert abs(r1 - r0) < 1
  assert r0 - r2 == pytest.approx(0.6 * 32, abs=2)  # y points up
  assert abs(c2 - c0) < 1


def test_front_and_back_cameras_see_different_walls_and_encode_position():
  env = toy2d.load('toy2d_front_back', seed=0, pixel_noise=0.0)
  env.reset()
  centre = env.set_position((0.0, 0.0))
  front, back = _pixels(centre['front_camera']), _pixels(centre['back_camera'])
  assert np.abs(front - back).mean() > 20  # different walls, different patterns

  def wall_rows(image):
    # Rows whose middle column is neither sky nor ground colour = the wall's height.
    column = image[:, image.shape[1] // 2]
    sky = np.array([0.75, 0.85, 0.95]) * 255
    ground = np.array([0.35, 0.3, 0.25]) * 255
    is_bg = (np.abs(column - sky).max(-1) < 4) | (np.abs(column - ground).max(-1) < 4)
    return int((~is_bg).sum())

  north = env.set_position((0.0, 0.6))
  # Moving north: the north wall looks taller to the front camera, the south wall
  # smaller to the back camera.
  assert wall_rows(_pixels(north['front_camera'])) > wall_rows(front) + 5
  assert wall_rows(_pixels(north['back_camera'])) < wall_rows(back) - 3
  # Moving east shifts the pattern the front camera sees.
  east = env.set_position((0.4, 0.0))
  assert np.abs(_pixels(east['front_camera']) - front).mean() > 10


def test_generated_data_covers_the_square():
  from mummi_tf.toy import data
  sample = data.generate('x_y', 500, seed=3, episode_length=50)
  assert sample['x_position'].shape == (500, 1) and sample['state'].shape == (500, 2)
  assert sample['state'].min() < -0.5 and sample['state'].max() > 0.5
  # Consecutive steps of an episode move by at most step_size per axis.
  steps = np.abs(np.diff(sample['state'][:50], axis=0))
  assert steps.max() <= 0.1 + 1e-6 and steps.mean() > 0.01
  with pytest.raises(ValueError, match='position_camera, front_back, x_y'):
    data.generate('camera_only', 10)


def test_envs_module_does_not_import_tensorflow():
  code = ('import sys; from mummi_tf.envs import toy2d; from mummi_tf.toy import data; '
          'toy2d.load("toy2d_front_back").reset(); '
          'bad = [m for m in ("tensorflow", "tf_keras", "tensorflow_probability") '
          'if m in sys.modules]; assert not bad, bad')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)


def test_metrics_on_known_latents():
  from mummi_tf.toy import metrics
  rng = np.random.default_rng(0)
  state = rng.uniform(-1, 1, (600, 2))
  a = state @ np.array([[2.0, 0.5], [-0.3, 1.0]]) + 0.3  # affine image of position
  b = -state + 0.01 * rng.normal(size=state.shape)  # another one
  noise = rng.normal(size=state.shape)  # an uninformative expert

  def embed(means, stds):
    return {
        'means': np.stack(means),
        'stds': np.stack(stds),
        'fused_mean': means[0],
        'state': state
    }

  good = embed([a, b], [np.full_like(a, 0.5), np.full_like(b, 0.5)])
  fit, held = ({
      k: v[:300] if v.ndim == 2 else v[:, :300] for k, v in good.items()
  }, {
      k: v[300:] if v.ndim == 2 else v[:, 300:] for k, v in good.items()
  })
  result = metrics.evaluate(fit, held, ('a', 'b'))
  assert result['consistency']['affine_r2'] > 0.99
  assert result['probe_r2']['a'] > 0.99 and result['probe_r2']['b'] > 0.99
  # precision 4 each + prior 1: shares 4/9, prior 1/9
  assert result['precision_share']['a'] == pytest.approx(4 / 9, rel=1e-4)
  assert result['precision_share']['prior'] == pytest.approx(1 / 9, rel=1e-4)
  bad = embed([a, noise], [np.full_like(a, 0.1), np.full_like(b, 10.0)])
  fit = {k: v[:300] if v.ndim == 2 else v[:, :300] for k, v in bad.items()}
  held = {k: v[300:] if v.ndim == 2 else v[:, 300:] for k, v in bad.items()}
  result = metrics.evaluate(fit, held, ('a', 'b'))
  assert result['consistency']['affine_r2'] < 0.05
  assert result['probe_r2']['b'] < 0.05
  assert result['precision_share']['b'] < 0.001 < 0.98 < result['precision_share']['a']
  assert result['consistency']['distance'] > 1.0


def test_modality_dropping_keeps_at_least_one_expert():
  from mummi_tf.toy import models
  spec = toy2d.load('toy2d_x_y').observation_spec()
  flags = models.ToyModel(spec, 'elbo_drop')._flags(3000).numpy()
  assert flags.shape == (2, 3000) and set(np.unique(flags)) == {0.0, 1.0}
  assert flags.sum(0).min() == 1  # never both dropped
  np.testing.assert_allclose(flags.mean(1), 2 / 3, atol=0.04)  # {all, only x, only y}
  assert models.ToyModel(spec, 'elbo')._flags(5).numpy().min() == 1.0
  with pytest.raises(ValueError, match='elbo, elbo_drop, mummi'):
    models.ToyModel(spec, 'reconstruction')


@pytest.fixture
def toy_cli(load_tool):
  return load_tool('toy_latents')


def test_tiny_toy_run_writes_results_and_figures(tmp_path, toy_cli, capsys):
  out = tmp_path / 'toy'
  code = toy_cli.main([
      '--out',
      str(out), '--steps', '3', '--samples', '64', '--test_samples', '64', '--batch', '16',
      '--pairs', 'x_y', '--methods', 'elbo_drop', 'mummi', '--seed', '1'
  ])
  assert code == 0
  printed = capsys.readouterr().out
  assert '| x_y (x_position, y_position) | mummi |' in printed
  report = json.loads((out / 'results.json').read_text())
  assert set(report['results']) == {'x_y'}
  by_method = report['results']['x_y']
  assert set(by_method) == {'elbo_drop', 'mummi'}  # 'elbo' = elbo_drop without dropping
  for result in by_method.values():
    assert {'distance', 'affine_r2'} <= set(result['consistency'])
    shares = result['precision_share']
    assert set(shares) == {'x_position', 'y_position', 'prior'}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-4)
    assert set(result['probe_r2']) == {'x_position', 'y_position', 'fused'}
    assert all(np.isfinite(v) for v in result['probe_r2'].values())
  png = out / report['figures']['x_y']
  assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 20_000
  with pytest.raises(SystemExit):
    toy_cli.main(['--out', str(out), '--pairs', 'camera_only'])
