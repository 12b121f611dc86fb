"""Behaviour learning in imagination and latent-guided MPC (paper appendix A).

The actor and the value are trained on trajectories imagined by the world model
from its posterior states, as in Dreamer v1 (paper ref. [5]):

* eq. (18): the actor maximises the sum of the lambda-returns V_lambda(z_t) of an
  imagined trajectory; the value minimises 1/2 ||v(z_t) - V_lambda(z_t)||^2;
* eq. (19): V_lambda mixes the k-step returns V_N^k with weights (1 - lambda)
  lambda^(k-1), computed here by the equivalent backward recursion
  V_lambda(t) = r_t + gamma ((1 - lambda) v(t+1) + lambda V_lambda(t+1)),
  bootstrapped with v at the horizon.

Latent-guided MPC (paper ref. [9], CVRL): from the current posterior, take an
action from the actor, imagine ``horizon`` steps with the actor, compute the
lambda-return of the first imagined step and move the first action by
``lr`` x its gradient (one ascent step).

The pure functions (``lambda_return``, ``imagine``, ``latent_mpc``) take callables,
so they work with any latent model; ``ActorCritic`` binds them to a world model
with the contract's API (``img_step``, ``feat``, ``reward``).
"""
import gin
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from mummi_tf.model import distribute
from mummi_tf.model import networks
from mummi_tf.model.optim import Optimizer

tfd = tfp.distributions
tfb = tfp.bijectors


def lambda_return(reward, value, pcont, bootstrap, lambda_):
  """Lambda-returns along axis 0 (eq. 19), Dreamer's backward recursion.

  Args:
    reward: (H, ...) reward r_t of imagined step t.
    value: (H, ...) value estimate v(z_t).
    pcont: (H, ...) discount gamma_t applied after step t, or a python float.
    bootstrap: (...) value of the state after the last step, v(z_H).
    lambda_: the mixing weight lambda (0: one-step TD, 1: Monte Carlo).

  Returns:
    (H, ...) V_lambda(z_t) with
    V_lambda(t) = r_t + gamma_t ((1 - lambda) v(t+1) + lambda V_lambda(t+1)),
    v(H) = V_lambda(H) = bootstrap.
  """
  if isinstance(pcont, (int, float)):
    pcont = pcont * tf.ones_like(reward)
  horizon = reward.shape[0]
  if horizon is None:
    raise ValueError('lambda_return needs a static horizon (axis 0 of reward).')
  next_values = tf.concat([value[1:], bootstrap[None]], 0)
  inputs = reward + pcont * next_values * (1.0 - lambda_)
  returns = []
  last = bootstrap
  for t in reversed(range(horizon)):
    last = inputs[t] + pcont[t] * lambda_ * last
    returns.append(last)
  return tf.stack(returns[::-1], 0)


def imagine(start, policy, img_step, feat_fn, horizon):
  """Roll a latent model forward ``horizon`` steps with ``policy`` (appendix A).

  Args:
    start: the start state (nest of (N, ...) tensors), e.g. flattened posteriors.
    policy: feature (N, F) -> action (N, A). It receives the feature with the
      gradient stopped, as in Dreamer v1, so the actor's gradient reaches the
      actor only through the actions it emits.
    img_step: (state, action) -> next state (prior).
    feat_fn: state -> feature (N, F).
    horizon: number of imagined steps.

  Returns:
    (feats, actions): (horizon, N, F) features of the imagined states after each
    action, and the (horizon, N, A) actions that led to them.
  """
  state = start
  feats, actions = [], []
  for _ in range(horizon):
    action = policy(tf.stop_gradient(feat_fn(state)))
    state = img_step(state, action)
    feats.append(feat_fn(state))
    actions.append(action)
  return tf.stack(feats, 0), tf.stack(actions, 0)


def latent_mpc(start, first_action, policy, img_step, feat_fn, reward_fn, value_fn, horizon,
               discount, lambda_, lr):
  """Latent-guided MPC (CVRL, paper ref. [9]): one gradient-ascent step.

  Imagines ``horizon`` steps from ``start``: first ``first_action``, then the
  actions of ``policy`` (on gradient-stopped features). The objective is the
  lambda-return (eq. 19) of the first imagined step, per batch element; the
  first action moves by ``lr`` x its gradient. Batch elements are independent,
  so the gradient of their sum is each element's own gradient.

  Args:
    start: the current posterior state (nest of (B, ...) tensors).
    first_action: (B, A) the actor's action for ``start``.
    policy, img_step, feat_fn: as in ``imagine``.
    reward_fn, value_fn: feature (H, B, F) -> (H, B) reward / value.
    horizon: imagined steps (>= 1).
    discount, lambda_: gamma and lambda of the lambda-return.
    lr: ascent step size (prior code: 0.003).

  Returns:
    (B, A) the moved first action (not clipped).
  """
  if horizon < 1:
    raise ValueError(f'latent_mpc: horizon must be >= 1, got {horizon}.')
  first_action = tf.convert_to_tensor(first_action)
  with tf.GradientTape() as tape:
    tape.watch(first_action)
    state = img_step(start, first_action)
    feats = [feat_fn(state)]
    for _ in range(horizon - 1):
      state = img_step(state, policy(tf.stop_gradient(feat_fn(state))))
      feats.append(feat_fn(state))
    feat = tf.stack(feats, 0)
    reward = reward_fn(feat)
    value = value_fn(feat)
    if horizon > 1:
      returns = lambda_return(reward[:-1], value[:-1], discount, value[-1], lambda_)
      objective = tf.reduce_sum(returns[0])
    else:
      objective = tf.reduce_sum(reward[0] + discount * value[0])
  grad = tape.gradient(objective, first_action)
  return first_action + lr * grad


DISTS = ('tanh_normal', 'trunc_normal')


@gin.configurable
class Actor(tf.Module):
  """The policy pi(a | z): an MLP, then one of two action distributions in (-1, 1).

  ``'tanh_normal'`` (Dreamer v1, the prior code): mean = mean_scale * tanh(mu /
  mean_scale), std = softplus(s + softplus^-1(init_std)) + min_std, the action is tanh
  of a Normal(mean, std) sample; the mode is tanh(mean).
  ``'trunc_normal'`` (DreamerV2): mean = tanh(mu), std = 2 sigmoid((s + init_std) / 2)
  + min_std, a Normal truncated to [-1, 1]; the mode is the mean. Its samples move
  with the mean up to the bounds, where tanh_normal's reparameterised gradient
  vanishes (d tanh / dx < 0.02 once |x| > 3).
  """
  def __init__(self, action_size, layers=4, units=400, act='elu', dist='tanh_normal', init_std=5.0,
               mean_scale=5.0, min_std=1e-4, name='actor'):
    super().__init__(name=name)
    if dist not in DISTS:
      raise ValueError(f'Actor.dist must be one of {", ".join(DISTS)}; got {dist!r}.')
    self._size = int(action_size)
    self._dist = dist
    self._net = networks.MLP(units, layers, out=2 * self._size, act=act)
    self._raw_init_std = (
        float(np.log(np.expm1(init_std))) if dist == 'tanh_normal' else float(init_std))
    self._mean_scale = float(mean_scale)
    self._min_std = float(min_std)

  def params(self, feat):
    """(mean, std), each (..., A): pre-tanh for tanh_normal, in [-1, 1] for trunc."""
    mean, std = tf.split(self._net(feat), 2, -1)  # float32
    if self._dist == 'trunc_normal':
      return tf.tanh(mean), 2 * tf.sigmoid((std + self._raw_init_std) / 2) + self._min_std
    mean = self._mean_scale * tf.tanh(mean / self._mean_scale)
    std = tf.nn.softplus(std + self._raw_init_std) + self._min_std
    return mean, std

  def _dist_of(self, mean, std):
    if self._dist == 'trunc_normal':
      return tfd.TruncatedNormal(mean, std, -1.0, 1.0)
    return tfd.TransformedDistribution(tfd.Normal(mean, std), tfb.Tanh())

  def __call__(self, feat):
    """The action distribution, a tfd.Distribution with event shape (A,)."""
    return tfd.Independent(self._dist_of(*self.params(feat)), 1)

  def _sample_logp(self, mean, std, shape):
    """Reparameterised action samples of ``shape`` + (A,) and their log densities."""
    if self._dist == 'trunc_normal':
      dist = self._dist_of(mean, std)
      if distribute.keyed():  # by the inverse CDF of keyed uniforms
        u = distribute.uniform(
            tf.concat([shape, tf.shape(mean)], 0), axis=len(shape) + mean.shape.rank - 2)
        action = dist.quantile(tf.clip_by_value(u, 1e-6, 1 - 1e-6))
      else:
        action = dist.sample(shape)
      return action, tf.reduce_sum(dist.log_prob(action), -1)
    # In the pre-tanh space x: log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x)),
    # finite where tanh saturates.
    # The rows split over replicas: axis -2 of ``mean``, after the sample dims.
    x = mean + std * distribute.normal(
        tf.concat([shape, tf.shape(mean)], 0), axis=len(shape) + mean.shape.rank - 2)
    log_jacobian = 2.0 * (np.log(2.0) - x - tf.nn.softplus(-2.0 * x))
    return tf.tanh(x), tf.reduce_sum(tfd.Normal(mean, std).log_prob(x) - log_jacobian, -1)

  def sample(self, feat):
    """A reparameterised action sample in (-1, 1)."""
    return self._sample_logp(*self.params(feat), [])[0]

  def sample_entropy(self, feat):
    """(action, entropy): a reparameterised action sample in (-1, 1) and the entropy of
    pi(. | z) in nats — exact for trunc_normal, -log pi(action) of this very sample for
    tanh_normal (which has no closed form) — from one pass of the network."""
    mean, std = self.params(feat)
    action, logp = self._sample_logp(mean, std, [])
    if self._dist == 'trunc_normal':
      return action, tf.reduce_sum(self._dist_of(mean, std).entropy(), -1)
    return action, -logp

  def entropy(self, feat):
    """(...) entropy of pi(. | z) in nats (see ``sample_entropy``)."""
    return self.sample_entropy(feat)[1]

  def mode(self, feat):
    """The deterministic action: tanh(mean) (tanh_normal) or the mean (trunc_normal)."""
    mean = self.params(feat)[0]
    return mean if self._dist == 'trunc_normal' else tf.tanh(mean)

  def best_of(self, feat, samples=100):
    """Upstream Dreamer's evaluation action: the most likely of ``samples`` samples."""
    action, logp = self._sample_logp(*self.params(feat), [samples])
    pick = tf.one_hot(tf.argmax(logp, 0), samples, axis=0)  # (samples, ...)
    return tf.reduce_sum(action * pick[..., None], 0)


@gin.configurable
class Value(tf.Module):
  """State value v(z): MLP (Dreamer v1: 3x400 ELU) to a scalar."""
  def __init__(self, layers=3, units=400, act='elu', name='value'):
    super().__init__(name=name)
    self._net = networks.MLP(units, layers, out=1, act=act)

  def __call__(self, feat):
    """(..., F) -> (...) value."""
    return tf.squeeze(self._net(feat), -1)  # float32


@gin.configurable
class ActorCritic(tf.Module):
  """Actor, value, their optimisers, and MPC, bound to a world model.

  The world model must provide ``img_step(state, action)``, ``feat(state)`` and
  ``reward(feat) -> tfd.Distribution`` (see docs/ARCHITECTURE.md).
  """
  def __init__(self, action_size, horizon=15, discount=0.99, lambda_=0.95, actor_lr=8e-5,
               value_lr=8e-5, clip=30.0, eps=1e-7, entropy=0.0, slow_target_every=100, starts=0,
               mpc=True, mpc_lr=0.003, mpc_horizon=15, name='actor_critic'):
    super().__init__(name=name)
    for label, v in (('horizon', horizon), ('mpc_horizon', mpc_horizon)):
      if int(v) < 2:
        raise ValueError(f'ActorCritic.{label} must be an integer >= 2, got {v}.')
    if not 0.0 <= lambda_ <= 1.0 or not 0.0 < discount <= 1.0:
      raise ValueError('ActorCritic: lambda_ must be in [0, 1] and discount in '
                       f'(0, 1], got {lambda_} and {discount}.')
    if int(starts) < 0:
      raise ValueError(f'ActorCritic.starts must be >= 0 (0: every posterior), got {starts}.')
    self.action_size = int(action_size)
    self.horizon = int(horizon)
    # Imagination starts: every posterior of the batch (0, Dreamer) or this many of them,
    # drawn uniformly; the actor-critic's cost is proportional to it.
    self.starts = int(starts)
    self.discount = float(discount)
    self.lambda_ = float(lambda_)
    self.entropy = float(entropy)
    self.mpc = bool(mpc)
    self.mpc_lr = float(mpc_lr)
    self.mpc_horizon = int(mpc_horizon)
    self.actor = Actor(action_size)
    self.value = Value()
    # A slow copy of the value for the lambda-return targets and bootstraps (DreamerV2),
    # refreshed every ``slow_target_every`` updates; 0: the value itself (Dreamer v1).
    self.slow_target_every = int(slow_target_every)
    self.target_value = Value(name='target_value') if self.slow_target_every else None
    self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name='ac_updates',
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.actor_opt = Optimizer('actor', actor_lr, clip=clip, eps=eps)
    self.value_opt = Optimizer('value', value_lr, clip=clip, eps=eps)

  def build(self, feat_size):
    """Creates the networks' variables (needed before restore and tracing)."""
    feat = tf.zeros([1, feat_size], tf.float32)
    self.actor.params(feat)
    self.value(feat)
    if self.target_value is not None:
      self.target_value(feat)
      self._copy_target()
    self.actor_opt.build(self.actor.trainable_variables)
    self.value_opt.build(self.value.trainable_variables)

  def _copy_target(self):
    return [t.assign(s) for t, s in zip(self.target_value.variables, self.value.variables)]

  @staticmethod
  def reward_mode(world_model, feat):
    """The world model's predicted reward for features (..., F), shape (...)."""
    reward = world_model.reward(feat).mode()
    if reward.shape.rank == feat.shape.rank:  # A trailing unit axis.
      reward = tf.squeeze(reward, -1)
    return reward

  def start_states(self, post):
    """(B, T, ...) posteriors -> (N, ...) imagination starts, gradient stopped: all B x T,
    or ``starts`` of them drawn without replacement (on R replicas, ceil(starts / R) of
    each replica's)."""
    flat = {
        k: tf.stop_gradient(tf.reshape(v, [-1] + v.shape[2:].as_list())) for k, v in post.items()
    }
    total = tf.shape(flat['deter'])[0]
    if not self.starts:
      return flat
    starts = -(-self.starts // distribute.replicas())
    if distribute.keyed():
      pick = tf.argsort(distribute.uniform([total]))[:starts]
    else:
      pick = tf.random.shuffle(tf.range(total))[:starts]
    return {k: tf.gather(v, pick) for k, v in flat.items()}

  def rollout(self, world_model, start):
    """(feat, entropy): the (H, N, F) features imagined from ``start`` with the actor and,
    with the entropy bonus on, pi's entropy at the states that chose actions 0..H-2 (DreamerV2's
    bonus), (H - 1, N), from the rollout's own samples (no second pass of the actor); else None.
    """
    if not self.entropy:
      feat, _ = imagine(start, self.actor.sample, world_model.img_step, world_model.feat,
                        self.horizon)
      return feat, None
    entropies = []

    def policy(feat):
      action, entropy = self.actor.sample_entropy(feat)
      entropies.append(entropy)
      return action

    feat, _ = imagine(start, policy, world_model.img_step, world_model.feat, self.horizon)
    return feat, tf.stack(entropies[:-1], 0)

  def update(self, world_model, post):
    """One actor and one value step on imagined trajectories (eq. 18).

    Args:
      world_model: the world model (not updated here).
      post: posterior states, (B, T, ...) tensors; every one starts a
        trajectory of ``horizon`` imagined steps.

    Returns:
      metrics: ``actor_loss``, ``value_loss``, their grad norms and skip
      counts, and the mean imagined reward, value and lambda-return.
    """
    start = self.start_states(post)
    with tf.GradientTape() as actor_tape:
      feat, entropy = self.rollout(world_model, start)
      reward = self.reward_mode(world_model, feat)
      value = (self.target_value or self.value)(feat)
      pcont = self.discount * tf.ones_like(reward)
      returns = lambda_return(reward[:-1], value[:-1], pcont[:-1], value[-1], self.lambda_)
      weight = tf.stop_gradient(
          tf.math.cumprod(tf.concat([tf.ones_like(pcont[:1]), pcont[:-2]], 0), 0))
      actor_loss = -tf.reduce_mean(weight * returns)
      if self.entropy:
        actor_loss -= self.entropy * tf.reduce_mean(weight * entropy)
    metrics = self.actor_opt.minimize(actor_tape, actor_loss, self.actor.trainable_variables)
    target = tf.stop_gradient(returns)
    with tf.GradientTape() as value_tape:
      pred = self.value(tf.stop_gradient(feat[:-1]))
      value_loss = tf.reduce_mean(weight * 0.5 * tf.square(pred - target))
    metrics.update(self.value_opt.minimize(value_tape, value_loss, self.value.trainable_variables))
    self.updates.assign_add(1)
    if self.target_value is not None:

      def refresh():  # once for all replicas (mirrored variables)
        return tf.cond(self.updates % self.slow_target_every == 0,
                       lambda: tf.group(self._copy_target()), tf.no_op)

      distribute.cross_replica(refresh)
    if self.entropy:
      metrics['actor_entropy'] = tf.reduce_mean(entropy)
    metrics['imag_reward'] = tf.reduce_mean(reward)
    metrics['imag_value'] = tf.reduce_mean(value)
    metrics['imag_return'] = tf.reduce_mean(returns)
    return metrics

  def act(self, world_model, post, sample, mpc=None, best_of=0):
    """The behaviour action for posterior ``post`` (B, ...).

    Args:
      world_model: the world model.
      post: the current posterior state.
      sample: True: sampled actor actions and sampled imagined latents;
        False: deterministic (mode actions, prior means in imagination).
      mpc: latent-guided MPC on/off; None uses the gin setting.
      best_of: with ``sample``, > 0 takes the most likely of that many actor
        samples as the action (upstream Dreamer's evaluation policy).

    Returns:
      (B, A) action, clipped to [-1, 1] after MPC.
    """
    mpc = self.mpc if mpc is None else mpc
    feat = world_model.feat(post)
    policy = self.actor.sample if sample else self.actor.mode
    action = (self.actor.best_of(feat, best_of) if sample and best_of else policy(feat))
    if not mpc:
      return action
    if sample:
      img_step = world_model.img_step
    else:

      def img_step(state, act):
        prior = dict(world_model.img_step(state, act))
        prior['stoch'] = prior['mean']
        return prior

    action = latent_mpc(post, action, policy, img_step, world_model.feat,
                        lambda f: self.reward_mode(world_model, f), self.value, self.mpc_horizon,
                        self.discount, self.lambda_, self.mpc_lr)
    return tf.clip_by_value(action, -1.0, 1.0)
