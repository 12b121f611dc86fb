"""Agent: one compiled train step, the policy (exploration, determinism, resets,
MPC switch) and checkpoint round trips, at tiny dims."""
import dm_env
import gin
import numpy as np
import pytest
import tensorflow as tf

from bench import update_probe
from mummi_tf.model import agent as agent_lib

ACTION_SIZE = 2
OBS_SPEC = {
    'rgb': dm_env.specs.Array((64, 64, 3), np.uint8, 'rgb'),
    'rgb_flag': dm_env.specs.Array((), np.float32, 'rgb_flag'),
    'touch': dm_env.specs.Array((2,), np.float32, 'touch'),
    'touch_flag': dm_env.specs.Array((), np.float32, 'touch_flag'),
    'state': dm_env.specs.Array((5,), np.float32, 'state'),
}
ACTION_SPEC = dm_env.specs.BoundedArray((ACTION_SIZE,), np.float32, -1.0, 1.0)


def bind_tiny(**extra):
  """gin/tiny.gin's sizes, then ``extra`` bindings."""
  gin.parse_config_file('tiny.gin')
  for key, value in extra.items():
    gin.bind_parameter(key, value)


def make_obs(batch, seed=0, flags=None, spec=None):
  """Random observations of ``spec`` (modalities, flags, state, is_first)."""
  rng = np.random.default_rng(seed)
  obs = {}
  for name, s in (spec or OBS_SPEC).items():
    if s.dtype == np.uint8:
      obs[name] = rng.integers(0, 256, (batch,) + s.shape, np.uint8)
    elif name.endswith('_flag'):
      obs[name] = np.ones(batch, np.float32)
    else:
      obs[name] = rng.normal(size=(batch,) + s.shape).astype(np.float32)
  for name, value in (flags or {}).items():
    obs[f'{name}_flag'] = np.full(batch, value, np.float32)
  obs['is_first'] = np.zeros(batch, bool)
  return obs


def make_batch(batch, length, seed=0):
  """A random training batch of ``OBS_SPEC``, touch missing in the second half of the steps."""
  data = update_probe.random_batch(batch, length, seed, OBS_SPEC, ACTION_SIZE, missing=0.0)
  data['touch_flag'][:, length // 2:] = 0.0
  return data


@pytest.fixture
def agent():
  bind_tiny()
  tf.random.set_seed(1)
  return agent_lib.Agent(OBS_SPEC, ACTION_SPEC)


def _values(variables):
  return [v.numpy().copy() for v in variables]


@pytest.fixture(scope='module')
def trained():
  """An agent after one compiled train step (compiling it is the slow part)."""
  bind_tiny()
  tf.random.set_seed(2)
  agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  gin.clear_config()
  nets = (agent.world_model.model_variables, agent.behavior.actor.trainable_variables,
          agent.behavior.value.trainable_variables)
  before = [_values(v) for v in nets]
  metrics = agent.train(make_batch(3, 6))
  return agent, before, nets, metrics


def test_train_is_one_step_of_model_actor_and_value(trained):
  agent, before, nets, metrics = trained
  for key in ('model_loss', 'actor_loss', 'value_loss', 'actor_grad_norm', 'value_grad_norm', 'kl',
              'reward_loss'):
    assert key in metrics and np.isfinite(float(metrics[key])), key
  for values, variables in zip(before, nets):  # World model, actor, value.
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(values, variables))
  # One graph: later batches of the same shapes do not retrace.
  count = agent.train.experimental_get_tracing_count()
  agent.train(make_batch(3, 6, seed=5))
  assert agent.train.experimental_get_tracing_count() == count


def test_policy_training_noise_eval_determinism_and_reset(agent):
  obs = make_obs(4)
  a1, s1 = agent.policy(obs, None, training=False)
  a2, _ = agent.policy(obs, None, training=False)
  np.testing.assert_array_equal(a1.numpy(), a2.numpy())
  assert a1.shape == (4, ACTION_SIZE) and np.all(np.abs(a1.numpy()) <= 1.0)
  assert set(s1) == {'mean', 'std', 'stoch', 'deter', 'action'}
  t1, _ = agent.policy(obs, None, training=True)
  t2, _ = agent.policy(obs, None, training=True)
  assert not np.allclose(t1.numpy(), t2.numpy())  # Sampled + noise 0.3.
  assert np.all(np.abs(t1.numpy()) <= 1.0)
  # Carried state changes the next action; is_first restarts those rows.
  obs2 = make_obs(4, seed=3)
  fresh, _ = agent.policy(obs2, None, training=False)
  carried, _ = agent.policy(obs2, s1, training=False)
  assert not np.allclose(fresh.numpy(), carried.numpy())
  obs2['is_first'][:2] = True
  mixed, _ = agent.policy(obs2, s1, training=False)
  np.testing.assert_allclose(mixed.numpy()[:2], fresh.numpy()[:2], atol=1e-6)
  np.testing.assert_allclose(mixed.numpy()[2:], carried.numpy()[2:], atol=1e-6)
  # Any subset of modalities (flags), incl. none: finite, bounded actions.
  for flags in ({'rgb': 0.0}, {'touch': 0.0}, {'rgb': 0.0, 'touch': 0.0}):
    act, _ = agent.policy(make_obs(4, flags=flags), None, training=False)
    assert np.all(np.isfinite(act.numpy())) and np.all(np.abs(act.numpy()) <= 1)
  # A missing modality's content is ignored (zeroed before the encoder).
  none = make_obs(2, flags={'rgb': 0.0})
  other = dict(none, rgb=np.full_like(none['rgb'], 255))
  np.testing.assert_array_equal(
      agent.policy(none, None)[0].numpy(),
      agent.policy(other, None)[0].numpy())


def test_mpc_switch_and_checkpoint_round_trip(trained, tmp_path):
  agent = trained[0]
  obs = make_obs(3, seed=7)
  with_mpc, _ = agent.policy(obs, None, training=False)
  path = tf.train.Checkpoint(agent=agent).save(str(tmp_path / 'ckpt'))
  gin.clear_config()
  bind_tiny(**{'ActorCritic.mpc': False})
  other = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  tf.train.Checkpoint(agent=other).restore(path).assert_existing_objects_matched()
  without, _ = other.policy(obs, None, training=False)
  mode = agent.behavior.actor.mode(agent.world_model.feat(_eval_post(agent, obs)))
  np.testing.assert_allclose(without.numpy(), mode.numpy(), atol=1e-6)
  # MPC moves the mode action by a small gradient step (lr 0.003).
  diff = np.abs(with_mpc.numpy() - without.numpy())
  assert np.all(diff < 0.1) and np.max(diff) > 0
  # Same weights, same MPC setting -> identical actions.
  other.behavior.mpc = True
  again, _ = tf.function(lambda o: other.step(o, other.initial_state(3), sample=False))({
      k: v for k, v in obs.items() if k != 'state'
  })
  np.testing.assert_allclose(again.numpy(), with_mpc.numpy(), atol=1e-6)


def test_jit_policy_acts_as_the_graph_policy(trained, tmp_path):
  """``Agent.jit_policy``: the XLA-compiled MPC action (actor + rollout + gradient; the filter
  stays in the graph) gives the graph policy's deterministic actions and state; the sampled
  training step runs and stays in bounds; without MPC nothing is XLA-compiled."""
  agent = trained[0]
  path = tf.train.Checkpoint(agent=agent).save(str(tmp_path / 'ckpt'))
  gin.clear_config()
  bind_tiny(**{'Agent.jit_policy': True})
  jit = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  tf.train.Checkpoint(agent=jit).restore(path).assert_existing_objects_matched()
  assert jit._act._jit_compile and agent._act is None and not jit._policy._jit_compile
  assert jit.behavior.mpc  # the rollout and its gradient are what XLA fuses
  obs = make_obs(3, seed=11)
  state = None
  for step in range(3):
    want, want_state = agent.policy(obs, state, training=False)
    got, got_state = jit.policy(obs, state, training=False)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    np.testing.assert_allclose(got_state['deter'].numpy(), want_state['deter'].numpy(), atol=1e-4)
    state = want_state
    obs = make_obs(3, seed=12 + step)
  sampled, _ = jit.policy(obs, state, training=True)
  assert np.all(np.isfinite(sampled.numpy())) and np.all(np.abs(sampled.numpy()) <= 1.0)
  gin.clear_config()
  bind_tiny(**{'Agent.jit_policy': True, 'ActorCritic.mpc': False})
  assert agent_lib.Agent(OBS_SPEC, ACTION_SPEC)._act is None


def _eval_post(agent, obs):
  inputs = {k: v for k, v in obs.items() if k in ('rgb', 'touch') or k.endswith('_flag')}
  post, _ = agent.world_model.obs_step(
      agent.world_model.initial_state(3), tf.zeros([3, ACTION_SIZE]), inputs)
  return dict(post, stoch=post['mean'])


def test_agent_rejects_bad_action_spec():
  bind_tiny()
  with pytest.raises(ValueError, match='action_spec'):
    agent_lib.Agent(OBS_SPEC, {'shape': [2, 3]})


def test_eval_policy_mode_is_deterministic_and_sample_is_not():
  obs = make_obs(3, seed=4)
  actions = {}
  for kind in agent_lib.EVAL_POLICIES:
    bind_tiny(**{'Agent.eval_policy': kind, 'ActorCritic.mpc': False})
    tf.random.set_seed(1)
    agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
    gin.clear_config()
    actions[kind] = [agent.policy(obs, training=False)[0].numpy() for _ in range(2)]
  np.testing.assert_array_equal(*actions['mode'])
  assert not np.allclose(*actions['sample'])
  assert all(np.all(np.abs(a) <= 1) for a in actions['sample'])
  bind_tiny(**{'Agent.eval_policy': 'best'})
  with pytest.raises(ValueError, match='eval_policy'):
    agent_lib.Agent(OBS_SPEC, ACTION_SPEC)


def test_recurrent_state_and_heads_compute_in_float32_under_mixed_bfloat16():
  """h integrates every step: under mixed bf16 it must not be rounded to bf16."""
  import tf_keras as keras
  bind_tiny()
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  finally:
    keras.mixed_precision.set_global_policy('float32')
  wm = agent.world_model
  state = wm.initial_state(64)
  state['stoch'] = tf.random.normal(state['stoch'].shape)
  deter = wm.img_step(state, tf.random.uniform([64, ACTION_SIZE], -1, 1))['deter']
  assert deter.dtype == tf.float32
  rounded = tf.cast(tf.cast(deter, tf.bfloat16), tf.float32)
  assert np.any(deter.numpy() != rounded.numpy())  # float32 resolution, not bf16's
  feat = tf.random.normal([64, wm.feat_size])
  for out in (agent.behavior.value(feat), wm.reward(feat).mean(),
              agent.behavior.actor.params(feat)[0]):
    out = out.numpy()
    assert np.any(out != tf.cast(tf.cast(out, tf.bfloat16), tf.float32).numpy())


def test_mpc_shift_is_zero_without_a_step_and_grows_with_it():
  """diagnostics.behaviour's mpc_shift: how far one MPC ascent step moves the action."""
  from mummi_tf.model import diagnostics
  batch = make_batch(2, 4)
  shifts = []
  for lr in (0.0, 0.01, 1.0):
    gin.clear_config()
    bind_tiny(**{'ActorCritic.mpc_lr': lr})
    tf.random.set_seed(0)
    shifts.append(
        float(diagnostics.behaviour(agent_lib.Agent(OBS_SPEC, ACTION_SPEC), batch)['mpc_shift']))
  assert shifts[0] == 0.0 and 0.0 < shifts[1] < shifts[2] <= 2.0


def test_openloop_video_layout_truth_model_error():
  """agent/openl: observed on top, model in the middle, difference (grey = 0) below."""
  from mummi_tf.model import diagnostics
  bind_tiny(**{'WorldModel.method': 'dreamer'})
  agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
  batch = make_batch(2, 4)
  videos = diagnostics.openloop_videos(agent, batch, context=2)
  assert set(videos) == {'rgb'}  # image modalities only
  frames = videos['rgb']
  b, t = batch['rgb'].shape[:2]
  assert frames.shape == (t, 3 * 64, b * 64, 3) and frames.dtype == np.uint8
  np.testing.assert_allclose(frames[:, :64, :64], batch['rgb'][0], atol=1)  # truth on top
  gin.clear_config()
  bind_tiny()
  assert diagnostics.openloop_videos(agent_lib.Agent(OBS_SPEC, ACTION_SPEC), batch) == {}


def test_model_step_first_chooses_which_world_model_the_behaviour_imagines_in():
  """True (Dreamer's Algorithm 1): the actor-critic learns in the stepped world model. False
  (danijar/dreamer's and the authors' code): in the one the loss was computed with — its
  metrics are those of an agent whose world model does not move (lr 1e-30) — while the world model takes
  the same step either way."""
  runs = {}
  start = None
  for name, first, lr in (('first', True, 6e-4), ('last', False, 6e-4), ('frozen', True, 1e-30)):
    bind_tiny(**{'Agent.noise_seed': 3, 'Agent.model_step_first': first, 'WorldModel.lr': lr})
    agent = agent_lib.Agent(OBS_SPEC, ACTION_SPEC)
    gin.clear_config()
    if start is None:
      start = _values(agent.variables)
    for variable, value in zip(agent.variables, start):
      variable.assign(value)
    metrics = {k: float(v) for k, v in agent.train(make_batch(3, 6)).items()}
    runs[name] = metrics, _values(agent.world_model.model_variables)
  (first, wm_first), (last, wm_last), (frozen, wm_frozen) = (runs[k] for k in runs)
  behaviour = ('actor_loss', 'value_loss', 'imag_reward', 'imag_value', 'actor_grad_norm')
  for key in behaviour:
    np.testing.assert_allclose(last[key], frozen[key], rtol=1e-5, err_msg=key)
  assert any(abs(first[k] - frozen[k]) > 1e-4 * (1 + abs(frozen[k])) for k in behaviour)
  np.testing.assert_allclose(last['model_loss'], first['model_loss'], rtol=1e-6)
  for a, b in zip(wm_first, wm_last):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert any(not np.array_equal(a, c) for a, c in zip(wm_first, wm_frozen))
