"""WorldModel: the contract API, every method's gradients and overfitting."""
import dm_env.specs
import gin
import numpy as np
import pytest
import tensorflow as tf

from mummi_tf.model import mssm
from mummi_tf.model import precision
from mummi_tf.model.world_model import WorldModel

from model_helpers import ACTION, METHODS, TINY, batch, obs_spec

VARIANTS = [(m, {}) for m in METHODS] + [('mummi', {
    'sf_input': 'sample'
}), ('mummi', {
    'fusion': 'reference'
}), ('mummi', {
    'sf_kl': 'learned'
})]


def test_read_modalities_from_dm_env_and_tuple_specs():
  spec = {
      'rgb': dm_env.specs.Array((64, 64, 3), np.uint8),
      'touch': dm_env.specs.Array((2,), np.float32),
      'rgb_flag': dm_env.specs.Array((), np.float32),
      'state': dm_env.specs.Array((7,), np.float32)
  }
  assert mssm.read_modalities(spec) == {'rgb': ('image', (64, 64, 3)), 'touch': ('vector', (2,))}
  assert set(mssm.read_modalities(obs_spec())) == {'rgb', 'depth', 'touch'}
  sensor = {**spec, 'state_flag': dm_env.specs.Array((), np.float32)}  # gin/state.gin
  assert mssm.read_modalities(sensor)['state'] == ('vector', (7,))
  with pytest.raises(ValueError, match='rank-3 uint8 images'):
    mssm.read_modalities({'rgb': ((64, 64, 3), np.float32)})
  with pytest.raises(ValueError, match='at least 46x46'):
    mssm.read_modalities({'rgb': ((32, 32, 3), np.uint8)})


@pytest.mark.parametrize('kwargs, match', [({
    'method': 'planet'
}, 'mummi, mummi_b, cvrl, dreamer, mssm_e'),
                                           ({
                                               'method': 'mummi',
                                               'fusion': 'mean'
                                           }, 'poe, poe_eq11 or reference'),
                                           ({
                                               'method': 'mummi',
                                               'sf_input': 'mode'
                                           }, 'mean, sample'),
                                           ({
                                               'method': 'dreamer',
                                               'sf_kl': 'learned'
                                           }, 'needs a PoE method'),
                                           ({
                                               'infonce_weights': {
                                                   'sound': 1.0
                                               }
                                           }, r"valid are \['depth', 'rgb', 'touch'\]")])
def test_bad_options_name_valid_ones(kwargs, match):
  with pytest.raises(ValueError, match=match):
    WorldModel(obs_spec(), ACTION, **kwargs, **TINY)


def test_reconstruction_methods_need_64x64_images():
  spec = {'rgb': ((48, 48, 3), np.uint8)}
  with pytest.raises(ValueError, match='64x64'):
    WorldModel(spec, ACTION, method='dreamer', **TINY)


def test_contract_api_shapes_and_dtypes():
  wm = WorldModel(obs_spec(), ACTION, **TINY)
  data = batch()
  state = wm.initial_state(2)
  assert set(state) == {'mean', 'std', 'stoch', 'deter'}
  step_obs = {k: v[:, 0] for k, v in data.items()}
  post, prior = wm.obs_step(state, data['action'][:, 0], step_obs)
  assert post['deter'].shape == (2, 8) and post['stoch'].shape == (2, 4)
  prior2 = wm.img_step(post, data['action'][:, 1])
  assert set(prior2) == set(state)
  feat = wm.feat(post)
  assert feat.shape == (2, wm.feat_size) and wm.feat_size == 12
  assert wm.reward(feat).sample().shape == (2,)
  post, prior = wm.observe(data)
  assert post['stoch'].shape == (2, 4, 4) and prior['deter'].shape == (2, 4, 8)
  del data['is_first']  # optional key; B != T catches a transposed default
  post, _ = wm.observe({k: v[:, :3] for k, v in data.items()})
  assert post['deter'].shape == (2, 3, 8)
  assert all(v.dtype == tf.float32 for v in post.values())


@pytest.mark.parametrize('method', ['mummi', 'dreamer'])
def test_missing_modality_content_does_not_reach_the_posterior(method):
  wm = WorldModel(obs_spec(), ACTION, method=method, **TINY)
  obs = {k: v[:, 1] for k, v in batch().items()}  # depth_flag 0 at t = 1
  state = wm.initial_state(2)
  post, _ = wm.obs_step(state, obs['action'], obs)
  obs['depth'] = 255 - obs['depth']
  post2, _ = wm.obs_step(state, obs['action'], obs)
  np.testing.assert_allclose(post['mean'], post2['mean'], rtol=1e-6, atol=1e-6)
  obs['depth_flag'] = np.ones_like(obs['depth_flag'])
  post3, _ = wm.obs_step(state, obs['action'], obs)
  assert not np.allclose(post['mean'], post3['mean'])


def test_is_first_resets_the_state():
  wm = WorldModel(obs_spec(), ACTION, **TINY)
  data = batch()
  data['is_first'][:, 2] = True
  post, _ = wm.observe(data)
  fresh, _ = wm.observe({k: v[:, 2:] for k, v in data.items()})
  np.testing.assert_allclose(post['mean'][:, 2], fresh['mean'][:, 0], rtol=1e-5)
  np.testing.assert_allclose(post['deter'][:, 2], fresh['deter'][:, 0], rtol=1e-5)


@pytest.mark.parametrize('method, kwargs', VARIANTS)
def test_every_variable_gets_a_nonzero_gradient(method, kwargs):
  # free_nats 0: below the free nats the KL (the prior's only signal) is constant.
  wm = WorldModel(obs_spec(), ACTION, method=method, free_nats=0.0, **kwargs, **TINY)
  data = batch()
  data['depth_flag'][:] = 1.0
  with tf.GradientTape() as tape:
    loss, _, metrics = wm.loss(data)
  variables = wm.model_variables
  grads = tape.gradient(loss, variables)
  dead = [v.name for v, g in zip(variables, grads) if g is None or not np.any(g.numpy() != 0)]
  assert not dead, f'{method}: no gradient for {dead}'
  assert np.isfinite(float(loss))
  for key in ('kl', 'reward_loss'):
    assert key in metrics


@pytest.mark.parametrize('method', METHODS)
def test_loss_falls_when_overfitting_one_batch(method, tmp_path):
  wm = WorldModel(obs_spec(), ACTION, method=method, lr=3e-3, free_nats=0.0, **TINY)
  data = batch()
  term = {
      'mummi': 'infonce/rgb',
      'mummi_b': 'infonce/fused',
      'cvrl': 'infonce/fused',
      'dreamer': 'recon_loss/rgb',
      'mssm_e': 'recon_loss/rgb'
  }[method]
  history = []
  for _ in range(120):
    _, metrics = wm.train_step(data)
    history.append((float(metrics['model_loss']), float(metrics[term])))
  (loss0, term0), (loss1, term1) = (np.mean(history[:10], 0), np.mean(history[-10:], 0))
  assert loss1 < loss0 - 0.5, history[::10]
  if term.startswith('infonce'):  # log(8) = 2.08 at chance; falls toward 0.
    assert term1 < 0.8 * term0, history[::10]
  else:  # Unit-variance Gaussian: the log(2 pi) constant dominates the value.
    assert term1 < term0 - 5.0, history[::10]
  assert int(metrics['model_skipped']) == 0
  # The compiled model checkpoints and restores (tf.train.Checkpoint contract).
  ckpt = tf.train.Checkpoint(wm=wm)
  path = ckpt.save(str(tmp_path / 'ckpt'))
  saved = [v.numpy().copy() for v in wm.model_variables]
  wm.train_step(data)
  ckpt.restore(path).assert_consumed()
  for before, var in zip(saved, wm.model_variables):
    np.testing.assert_array_equal(before, var.numpy())


@pytest.mark.parametrize('method', ['mummi', 'dreamer'])
def test_build_from_spec_creates_every_variable(method):
  wm = WorldModel(obs_spec(), ACTION, method=method, **TINY)
  wm.build()
  count = len(wm.model_variables)
  assert count > 0 and wm.opt.built
  wm.loss(batch())
  assert len(wm.model_variables) == count


def test_mummi_diagnostics():
  wm = WorldModel(obs_spec(), ACTION, **TINY)
  _, _, metrics = wm.loss(batch())
  shares = [float(metrics[f'precision_share/{m}']) for m in ('rgb', 'depth', 'touch', 'prior')]
  assert all(0 < s < 1 for s in shares)
  for m in ('rgb', 'depth', 'touch'):
    assert 0 <= float(metrics[f'infonce_acc/{m}']) <= 1
  assert float(metrics['cross_modal_distance']) > 0


def test_mixed_bfloat16_step_is_finite_and_float32_outside():
  precision.set_policy('mixed_bfloat16')
  wm = WorldModel(obs_spec(), ACTION, **TINY)
  post, metrics = wm.update(batch())
  assert all(v.dtype == tf.float32 for v in post.values())
  assert np.isfinite(float(metrics['model_loss']))
  assert int(metrics['model_skipped']) == 0
  assert all(v.dtype == tf.float32 for v in wm.model_variables)


def test_set_policy_validates_and_auto_is_bfloat16_on_cpu():
  with pytest.raises(ValueError, match='auto, float32, mixed_bfloat16'):
    precision.set_policy('fp8')
  if not tf.config.list_physical_devices('GPU'):
    assert precision.resolve_policy('auto') == 'mixed_bfloat16'


@pytest.mark.parametrize('method', METHODS)
def test_method_gin_files_select_the_method(method):
  # The order of mummi_tf.cli.train: task family first, then the method file.
  gin.parse_config_files_and_bindings(['gin/table_wiping.gin', f'gin/{method}.gin'], [])
  assert gin.query_parameter('WorldModel.fused') == 256  # the family's s^f survives
  gin.clear_config()
  gin.parse_config_files_and_bindings(['gin/envs_dmc.gin', f'gin/{method}.gin'], [])
  assert gin.query_parameter('WorldModel.method') == method
  assert gin.query_parameter('WorldModel.fused') == 1024
  assert gin.query_parameter('WorldModel.deter') == 200
  wm = WorldModel(obs_spec(), ACTION)
  assert wm.method == method and wm.feat_size == 230


def test_symlog_vectors_feed_and_reconstruct_in_symlog_space():
  """With symlog_vectors the touch encoder sees symlog(x) and its decoder is scored
  against symlog(x); images are untouched; off, vectors pass as they are."""
  from mummi_tf.model import networks
  data = {k: tf.constant(v) for k, v in batch().items()}
  data['touch'] = data['touch'] * 30.0  # large magnitudes, where symlog matters
  wm = WorldModel(obs_spec(), ACTION, method='dreamer', symlog_vectors=True, **TINY)
  np.testing.assert_allclose(
      wm.mssm.encoder_input('touch', data['touch']),
      np.sign(data['touch']) * np.log1p(np.abs(data['touch'])), rtol=1e-6)
  assert wm.mssm.encoder_input('rgb', data['rgb']) is data['rgb']
  _, post, metrics = wm.loss(data)
  feat = wm.feat(post)
  pred = tf.cast(wm.heads._decoders['touch'](feat), tf.float32)
  target = networks.symlog(data['touch'])
  expect = np.mean(np.sum(0.5 * (target - pred)**2 + 0.5 * np.log(2 * np.pi), -1))
  assert float(metrics['recon_loss/touch']) == pytest.approx(expect, rel=1e-4)
  plain = WorldModel(obs_spec(), ACTION, method='dreamer', **TINY)
  assert plain.mssm.encoder_input('touch', data['touch']) is data['touch']
