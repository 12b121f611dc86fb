"""Behaviour: lambda-returns (eq. 19), imagination, actor bounds, latent MPC."""
import gin
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from mummi_tf.model import behavior

tfd = tfp.distributions


def _eq19(reward, value, bootstrap, gamma, lam):
  """V_lambda(t) from eq. (19): a lambda-weighted mix of k-step returns."""
  horizon = len(reward)
  v = np.concatenate([value, [bootstrap]])
  out = []
  for t in range(horizon):
    steps = horizon - t

    def n_step(k, t=t):
      return sum(gamma**j * reward[t + j] for j in range(k)) + (gamma**k * v[t + k])

    mix = (1 - lam) * sum(lam**(k - 1) * n_step(k) for k in range(1, steps))
    out.append(mix + lam**(steps - 1) * n_step(steps))
  return np.array(out)


def test_lambda_return_matches_eq19_by_hand():
  # Two steps, worked by hand: V(1) = r1 + g b; V(0) = r0 + g((1-l) v1 + l V(1)).
  r, v, b, g, l = [1.0, 2.0], [0.5, 3.0], 4.0, 0.9, 0.5
  v1 = 2.0 + 0.9 * 4.0
  v0 = 1.0 + 0.9 * (0.5 * 3.0 + 0.5 * v1)
  got = behavior.lambda_return(tf.constant(r), tf.constant(v), g, tf.constant(b), l).numpy()
  np.testing.assert_allclose(got, [v0, v1], rtol=1e-6)


def test_lambda_return_matches_eq19_batched_and_limits():
  rng = np.random.default_rng(0)
  reward = rng.normal(size=(14, 3)).astype(np.float32)
  value = rng.normal(size=(14, 3)).astype(np.float32)
  boot = rng.normal(size=(3,)).astype(np.float32)
  got = behavior.lambda_return(reward, value, 0.99, tf.constant(boot), 0.95).numpy()
  for i in range(3):
    np.testing.assert_allclose(got[:, i], _eq19(reward[:, i], value[:, i], boot[i], 0.99, 0.95),
                               rtol=1e-4, atol=1e-4)
  # lambda = 0: one-step TD targets; lambda = 1: discounted Monte Carlo.
  td = behavior.lambda_return(reward, value, 0.9, tf.constant(boot), 0.0)
  nxt = np.concatenate([value[1:], boot[None]], 0)
  np.testing.assert_allclose(td.numpy(), reward + 0.9 * nxt, rtol=1e-5)
  mc = behavior.lambda_return(reward, value, 0.9, tf.constant(boot), 1.0)
  expect = boot * 0.9**14 + sum(0.9**j * reward[j] for j in range(14))
  np.testing.assert_allclose(mc.numpy()[0], expect, rtol=1e-4, atol=1e-4)


def test_actor_init_std_mean_scale_and_bounds():
  gin.bind_parameter('Actor.units', 16)
  actor = behavior.Actor(3)
  mean, std = actor.params(tf.zeros([2, 5]))
  # Zero input -> zero pre-activations: mean 0 and std = init_std (+ min_std).
  np.testing.assert_allclose(mean.numpy(), 0.0, atol=1e-6)
  np.testing.assert_allclose(std.numpy(), 5.0 + 1e-4, rtol=1e-5)
  big = tf.constant(np.random.default_rng(1).normal(size=(64, 5)) * 1e4, tf.float32)
  mean, _ = actor.params(big)
  assert np.all(np.abs(mean.numpy()) <= 5.0 + 1e-5)
  for action in (actor.sample(big), actor.mode(big), actor.sample(big * 0)):
    a = action.numpy()
    assert a.shape == (64, 3) and np.all(np.isfinite(a))
    assert np.all(np.abs(a) <= 1.0)
  lp = actor(tf.zeros([4, 5])).log_prob(actor.mode(tf.zeros([4, 5])))
  assert lp.shape == (4,) and np.all(np.isfinite(lp.numpy()))


# A tiny differentiable latent model: position x, x' = x + a, reward -(x - c)^2.
def _toy_img_step(state, action):
  x = state['x'] + action
  return {'x': x, 'mean': x, 'stoch': x}


def _toy_feat(state):
  return state['x']


def test_imagine_rolls_out_the_policy():
  start = {'x': tf.constant([[0.0], [1.0]])}
  feats, actions = behavior.imagine(start, lambda f: tf.ones_like(f) * 0.5, _toy_img_step,
                                    _toy_feat, 4)
  assert feats.shape == (4, 2, 1) and actions.shape == (4, 2, 1)
  np.testing.assert_allclose(feats.numpy()[:, 0, 0], [0.5, 1.0, 1.5, 2.0])
  np.testing.assert_allclose(feats.numpy()[:, 1, 0], [1.5, 2.0, 2.5, 3.0])


def test_latent_mpc_moves_first_action_uphill_by_lr_times_gradient():
  target = 1.0
  reward_fn = lambda f: -tf.square(f[..., 0] - target)
  value_fn = lambda f: tf.zeros_like(f[..., 0])
  start = {'x': tf.constant([[0.0], [3.0]])}
  a0 = tf.constant([[0.2], [0.2]])
  horizon, gamma, lam, lr = 5, 0.99, 0.95, 0.003
  moved = behavior.latent_mpc(start, a0, lambda f: tf.zeros_like(f), _toy_img_step, _toy_feat,
                              reward_fn, value_fn, horizon, gamma, lam, lr).numpy()
  # Zero policy: every imagined state is x + a0; with zero value the return is
  # R * sum_j (gamma lambda)^j over the horizon - 1 lambda-return steps.
  weight = sum((gamma * lam)**j for j in range(horizon - 1))
  grad = -2.0 * (np.array([[0.0], [3.0]]) + 0.2 - target) * weight
  np.testing.assert_allclose(moved, 0.2 + lr * grad, rtol=1e-5)
  assert moved[0, 0] > 0.2 and moved[1, 0] < 0.2  # Towards the target.

  def ret(a):
    return -np.square(np.array([0.0, 3.0]) + a[:, 0] - target) * weight

  assert np.all(ret(moved) > ret(a0.numpy()))


class _ToyWorld:
  """The toy latent model with the world model's API (img_step/feat/reward)."""
  def img_step(self, state, action):
    mean = state['stoch'] + action
    return {
        'mean': mean,
        'std': tf.ones_like(mean) * 0.1,
        'stoch': mean + 0.1 * tf.random.normal(tf.shape(mean)),
        'deter': state['deter']
    }

  def feat(self, state):
    return tf.concat([state['stoch'], state['deter']], -1)

  def reward(self, feat):
    return tfd.Independent(tfd.Normal(-tf.square(feat[..., :1] - 1.0), 1.0), 1)


def _toy_post(batch, time):
  x = tf.random.uniform([batch, time, 1], -2.0, 2.0)
  return {'mean': x, 'std': tf.ones_like(x), 'stoch': x, 'deter': tf.zeros([batch, time, 2])}


def test_actor_critic_update_improves_imagined_return():
  tf.random.set_seed(0)
  gin.bind_parameter('Actor.units', 32)
  gin.bind_parameter('Actor.layers', 2)
  gin.bind_parameter('Value.units', 32)
  gin.bind_parameter('Value.layers', 2)
  ac = behavior.ActorCritic(1, horizon=5, actor_lr=3e-3, value_lr=3e-3)
  ac.build(3)
  world = _ToyWorld()
  update = tf.function(lambda post: ac.update(world, post))
  first = None
  for _ in range(150):
    metrics = update(_toy_post(16, 4))
    if first is None:
      first = {k: float(v) for k, v in metrics.items()}
  last = {k: float(v) for k, v in metrics.items()}
  for key in ('actor_loss', 'value_loss', 'actor_grad_norm', 'value_grad_norm'):
    assert np.isfinite(last[key])
  assert last['imag_reward'] > first['imag_reward'] + 0.5
  assert last['actor_skipped'] == 0 and last['value_skipped'] == 0
  # The deterministic action (with and without MPC) is reproducible, bounded.
  post = {k: v[:, 0] for k, v in _toy_post(8, 1).items()}
  for mpc in (False, True):
    a1 = ac.act(world, post, sample=False, mpc=mpc).numpy()
    a2 = ac.act(world, post, sample=False, mpc=mpc).numpy()
    np.testing.assert_array_equal(a1, a2)
    assert np.all(np.abs(a1) <= 1.0)
  # The learnt policy moves towards x = 1.
  x = post['stoch'].numpy()[:, 0]
  a = ac.act(world, post, sample=False, mpc=False).numpy()[:, 0]
  far = np.abs(x - 1.0) > 0.5
  assert np.mean(np.sign(a[far]) == np.sign(1.0 - x[far])) > 0.8


def test_actor_critic_rejects_bad_settings():
  with pytest.raises(ValueError, match='horizon'):
    behavior.ActorCritic(2, horizon=1)
  with pytest.raises(ValueError, match='lambda_'):
    behavior.ActorCritic(2, lambda_=1.5)


def test_best_of_is_the_most_likely_of_the_same_samples():
  """Upstream's evaluation action: argmax of the tanh-normal density over samples."""
  gin.bind_parameter('Actor.units', 16)
  gin.bind_parameter('Actor.init_std', 0.5)  # unsaturated: TFP's density is exact there
  actor = behavior.Actor(3)
  feat = tf.constant(np.random.default_rng(0).normal(size=(4, 5)), tf.float32)
  tf.random.set_seed(7)
  chosen = actor.best_of(feat, 50).numpy()
  tf.random.set_seed(7)  # The same normal draws, scored by TFP's own density.
  mean, std = actor.params(feat)
  candidates = tf.tanh(mean + std * tf.random.normal([50, 4, 3]))
  logp = actor(feat).log_prob(tf.clip_by_value(candidates, -0.999999, 0.999999))
  expect = candidates.numpy()[np.argmax(logp.numpy(), 0), np.arange(4)]
  np.testing.assert_allclose(chosen, expect, atol=1e-5)
  assert chosen.shape == (4, 3) and np.all(np.abs(chosen) < 1.0)


def _small_actor_critic(**kwargs):
  for key, value in (('Actor.units', 16), ('Actor.layers', 2), ('Value.units', 16), ('Value.layers',
                                                                                     2)):
    gin.bind_parameter(key, value)
  ac = behavior.ActorCritic(1, horizon=4, **kwargs)
  ac.build(3)
  return ac


def test_slow_target_value_lags_then_copies():
  """The lambda-return targets read a copy of the value refreshed every k updates."""
  tf.random.set_seed(3)
  ac = _small_actor_critic(slow_target_every=3, value_lr=1e-2)
  same = lambda: all(
      np.array_equal(t.numpy(), s.numpy())
      for t, s in zip(ac.target_value.variables, ac.value.variables))
  assert same()  # built as a copy
  world = _ToyWorld()
  for update in range(1, 7):
    ac.update(world, _toy_post(8, 3))
    assert same() == (update % 3 == 0), update
  assert _small_actor_critic(slow_target_every=0).target_value is None


class _LinearWorld(_ToyWorld):
  """Reward x: the larger the action, the better, without end."""
  def reward(self, feat):
    return tfd.Independent(tfd.Normal(feat[..., :1], 1.0), 1)


def test_entropy_bonus_keeps_the_tanh_actor_out_of_saturation():
  """Maximising a return that grows with the action saturates the tanh-normal actor
  (its gradient then vanishes); the entropy bonus, whose gradient does not vanish
  there, holds it where the gradient lives."""
  saturated = {}
  for entropy in (0.0, 1.0):
    tf.random.set_seed(0)
    ac = _small_actor_critic(entropy=entropy, actor_lr=3e-3, slow_target_every=0)
    world = _LinearWorld()
    update = tf.function(lambda post, ac=ac, world=world: ac.update(world, post))
    for _ in range(150):
      metrics = update(_toy_post(16, 4))
    assert ('actor_entropy' in metrics) == bool(entropy)
    feat = tf.random.uniform([256, 3], -2.0, 2.0)
    saturated[entropy] = float(
        tf.reduce_mean(tf.cast(tf.abs(ac.actor.sample(feat)) > 0.99, tf.float32)))
  assert saturated[0.0] > 0.5 and saturated[1.0] < saturated[0.0] - 0.3, saturated


def test_trunc_normal_actor_bounds_mode_and_exact_entropy():
  gin.bind_parameter('Actor.units', 16)
  gin.bind_parameter('Actor.dist', 'trunc_normal')
  gin.bind_parameter('Actor.init_std', 0.0)
  gin.bind_parameter('Actor.min_std', 0.1)
  actor = behavior.Actor(2)
  feat = tf.constant(np.random.default_rng(2).normal(size=(64, 5)) * 100, tf.float32)
  mean, std = actor.params(feat)
  assert np.all(np.abs(mean.numpy()) <= 1) and np.all(std.numpy() >= 0.1)
  np.testing.assert_array_equal(actor.mode(feat).numpy(), mean.numpy())
  for action in (actor.sample(feat), actor.best_of(feat, 10)):
    assert action.shape == (64, 2) and np.all(np.abs(action.numpy()) <= 1)
  expect = tfd.TruncatedNormal(mean, std, -1.0, 1.0).entropy().numpy().sum(-1)
  np.testing.assert_allclose(actor.entropy(feat).numpy(), expect, rtol=1e-5)
  with pytest.raises(ValueError, match='tanh_normal, trunc_normal'):
    behavior.Actor(2, dist='beta')


def test_starts_draws_distinct_posteriors_of_the_batch():
  ac = _small_actor_critic(starts=5)
  post = _toy_post(4, 3)  # 12 posteriors
  picked = ac.start_states(post)['stoch'].numpy()
  flat = post['stoch'].numpy().reshape(12, -1)
  assert picked.shape == (5, flat.shape[1])
  rows = {tuple(r) for r in picked}
  assert len(rows) == 5 and rows <= {tuple(r) for r in flat}
  every = _small_actor_critic(starts=0).start_states(post)['stoch'].numpy()
  np.testing.assert_array_equal(every, flat)
  metrics = ac.update(_ToyWorld(), post)  # trains on the subset
  assert np.isfinite(float(metrics['actor_loss']))
  with pytest.raises(ValueError, match='starts must be >= 0'):
    behavior.ActorCritic(1, starts=-1)


def test_sample_entropy_is_minus_the_log_density_of_its_own_sample():
  """The tanh-normal's entropy estimate is -log pi(a) of the very action returned (TFP's
  density, unsaturated actor); the trunc-normal's is exact."""
  gin.bind_parameter('Actor.units', 16)
  gin.bind_parameter('Actor.init_std', 0.5)
  actor = behavior.Actor(3)
  feat = tf.constant(np.random.default_rng(1).normal(size=(32, 5)), tf.float32)
  action, entropy = actor.sample_entropy(feat)
  expect = -actor(feat).log_prob(action).numpy()
  np.testing.assert_allclose(entropy.numpy(), expect, rtol=1e-4, atol=1e-4)
  assert entropy.shape == (32,) and np.all(np.abs(action.numpy()) < 1.0)


def test_rollout_gives_the_entropy_without_a_second_actor_pass():
  """With the entropy bonus on, an update runs the actor once per imagined step (H calls
  of H starts each): the bonus reads the rollout's own samples, at the states that chose
  actions 0..H-2."""
  ac = _small_actor_critic(entropy=0.1, slow_target_every=0)
  calls = []
  params = ac.actor.params

  def counted(feat):
    calls.append(tuple(feat.shape))
    return params(feat)

  ac.actor.params = counted
  post = _toy_post(4, 3)
  feat, entropy = ac.rollout(_ToyWorld(), ac.start_states(post))
  assert feat.shape == (4, 12, 3) and entropy.shape == (3, 12)
  calls.clear()
  metrics = ac.update(_ToyWorld(), post)
  assert calls == [(12, 3)] * 4, calls
  assert np.isfinite(float(metrics['actor_entropy']))
