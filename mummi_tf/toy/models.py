"""Non-sequential multi-modal latent models of the toy experiment (paper Fig. 1, 19, 20).

Each step is modelled on its own (the toy world needs no memory): per modality an encoder
and a diagonal Gaussian expert q(s | x^m) (min std 0.1, as in the MSSM), fused with the
package's exact product of experts including a unit prior expert (eq. 11,
``mummi_tf.model.fusion.product_of_experts``), giving q(s | x^{1:M}). Three training methods:

* ``elbo``: the reconstruction ELBO of eq. (10) without dynamics and reward,
  sum_m E_q[log p(x^m | s)] - kl_weight * max(free_nats, KL(q(s | x^{1:M}) || N(0, I))),
  with the MSSM's free nats (3) so that the posterior does not collapse; Gaussian decoders
  whose std is one learned scalar per modality (``decoder_std='learned'``, maximum
  likelihood) or fixed (a number; the paper's appendix uses 1.0).
* ``elbo_drop``: the same ELBO with random modality dropping (the MSSM-e baseline): for
  every sample one of {all, only m} is drawn uniformly, the dropped experts leave the
  product, and every modality is still reconstructed.
* ``mummi``: eq. (17) without reward: sum_m lambda_m InfoNCE with the density ratio of
  eq. (16), log f^m(x_j, s_i) = -||mu^m(x_j) - g(s_i)||^2 (``mummi_tf.model.objectives.infonce``,
  the other samples of the batch are the negatives), plus kl_weight * max(free_nats, KL).

Public API::

    ToyModel(obs_spec, method, latent=2, ...)   # gin-configurable
    model.encode(obs) -> (means, stds)          # lists over model.modalities, (N, latent)
    model.train(obs, steps, batch, seed) -> list of per-step metric dicts
    model.embed(obs, batch=500) -> dict of numpy: 'means' (M, N, L), 'stds' (M, N, L),
                                   'fused_mean' (N, L), 'fused_std' (N, L)
"""
import gin
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from mummi_tf.model import fusion
from mummi_tf.model import networks
from mummi_tf.model import objectives
from mummi_tf.model import optim

tfd = tfp.distributions

METHODS = ('elbo', 'elbo_drop', 'mummi')
_DEFAULT_KL = {'elbo': 1.0, 'elbo_drop': 1.0, 'mummi': 1e-2}


def _is_image(spec):
  return len(spec.shape) == 3 and spec.dtype == np.uint8


def _preprocess(x, spec):
  x = tf.cast(x, tf.float32)
  return x / 255.0 - 0.5 if _is_image(spec) else x


@gin.configurable
class ToyModel(tf.Module):
  """Encoders, experts, PoE and the method's heads; see the module docstring."""
  def __init__(self, obs_spec, method, latent=2, depth=8, units=128, min_std=0.1, kl_weight=None,
               free_nats=3.0, decoder_std='learned', lambdas=None, lr=1e-3, clip=100.0):
    """``obs_spec``: dict of dm_env specs (modalities; ``state`` and ``*_flag`` ignored).
    ``latent``: size of s; ``depth``: conv channels multiplier; ``units``: MLP width;
    ``kl_weight``: None = 1 for the ELBOs, 1e-2 for MuMMI; ``free_nats``: the KL term is
    clipped below at this many nats (the MSSM's free nats, 3); ``decoder_std``: 'learned'
    or a fixed std of the reconstruction Gaussians (preprocessed units); ``lambdas``:
    {modality: weight} of eq. (17), default 1 each; ``lr``: Adam learning rate."""
    super().__init__(name=f'toy_{method}')
    if method not in METHODS:
      raise ValueError(f'Unknown toy method {method!r}; valid: {", ".join(METHODS)}.')
    self.method = method
    self.specs = {k: v for k, v in obs_spec.items() if k != 'state' and not k.endswith('_flag')}
    self.modalities = tuple(self.specs)
    if len(self.modalities) < 2:
      raise ValueError(f'ToyModel needs >= 2 modalities, got {self.modalities}.')
    self.latent = latent
    self.kl_weight = _DEFAULT_KL[method] if kl_weight is None else float(kl_weight)
    self.free_nats = float(free_nats)
    if decoder_std != 'learned' and not (isinstance(decoder_std, (int, float)) and decoder_std > 0):
      raise ValueError(f"decoder_std must be 'learned' or a positive number, "
                       f"got {decoder_std!r}.")
    self.decoder_std = decoder_std
    lambdas = lambdas or {}
    self.lambdas = {m: float(lambdas.get(m, 1.0)) for m in self.modalities}
    self.encoders, self.experts, self.decoders, self.log_stds = {}, {}, {}, {}
    for m, spec in self.specs.items():
      if _is_image(spec):
        if tuple(spec.shape[:2]) != (64, 64):
          raise ValueError(f'Image modality {m} must be 64x64 (the MSSM conv encoder), '
                           f'got {spec.shape}.')
        self.encoders[m] = networks.ConvEncoder(depth, name=f'enc_{m}')
        decoder = networks.ConvDecoder(spec.shape[-1], depth, name=f'dec_{m}')
      else:
        self.encoders[m] = networks.MLPEncoder(units, units, name=f'enc_{m}')
        decoder = networks.MLP(units, 2, out=spec.shape[-1], name=f'dec_{m}')
      self.experts[m] = (networks.Dense(units, 'relu', name=f'expert_{m}'),
                         networks.GaussianHead(latent, min_std, name=f'expert_head_{m}'))
      if method != 'mummi':
        self.decoders[m] = decoder
        if decoder_std == 'learned':
          self.log_stds[m] = tf.Variable(0.0, name=f'log_std_{m}')
    self.projection = (
        networks.MLP(units, 2, out=latent, name='projection') if method == 'mummi' else None)
    self.optimizer = optim.Optimizer('toy', lr, clip=clip)
    self._step = tf.function(self._update)

  # --- model ---------------------------------------------------------------
  def encode(self, obs):
    """Expert means and stds, lists over ``self.modalities`` of (N, latent) float32."""
    means, stds = [], []
    for m in self.modalities:
      hidden, head = self.experts[m]
      mean, std = head(hidden(self.encoders[m](obs[m])))
      means.append(mean)
      stds.append(std)
    return means, stds

  def _loss(self, obs, flags):
    means, stds = self.encode(obs)
    mean, std = fusion.product_of_experts(means, stds, flags)
    sample = mean + std * tf.random.normal(tf.shape(mean))
    unit = {'mean': tf.zeros_like(mean), 'std': tf.ones_like(std)}
    kl_term, kl = objectives.kl_loss({'mean': mean, 'std': std}, unit, self.free_nats)
    metrics = {'kl': kl}
    loss = self.kl_weight * kl_term
    for i, m in enumerate(self.modalities):
      if self.method == 'mummi':
        term, acc = objectives.infonce(self.projection(sample), means[i])
        loss += self.lambdas[m] * term
        metrics[f'nce_{m}'] = term
        metrics[f'acc_{m}'] = acc
      else:
        pred = self.decoders[m](sample)
        target = _preprocess(obs[m], self.specs[m])
        std = (
            tf.exp(tf.maximum(self.log_stds[m], -7.0)) if m in self.log_stds else self.decoder_std)
        dist = tfd.Independent(tfd.Normal(pred, std), len(self.specs[m].shape))
        ll = objectives.masked_log_likelihood(dist, target, tf.ones(tf.shape(mean)[:1]))
        loss -= ll
        metrics[f'rec_{m}'] = -ll
        metrics[f'decoder_std_{m}'] = tf.convert_to_tensor(std, tf.float32)
    metrics['loss'] = loss
    return loss, metrics

  def _flags(self, batch):
    """Presence flags (M, batch): all ones, or for ``elbo_drop`` a uniform draw from
    {all modalities, only modality m for each m} per sample."""
    count = len(self.modalities)
    if self.method != 'elbo_drop':
      return tf.ones([count, batch])
    choice = tf.random.uniform([batch], 0, count + 1, dtype=tf.int32)
    keep_all = tf.cast(tf.equal(choice, count), tf.float32)
    only = tf.transpose(tf.one_hot(choice, count))  # (M, batch); zeros for "all"
    return tf.maximum(only, keep_all[None, :])

  def _update(self, obs):
    batch = tf.shape(obs[self.modalities[0]])[0]
    flags = self._flags(batch)
    with tf.GradientTape() as tape:
      loss, metrics = self._loss(obs, flags)
    metrics.update(self.optimizer.minimize(tape, loss, self.trainable_variables))
    return metrics

  # --- training and embedding ------------------------------------------------
  def train(self, data, steps, batch=128, seed=0, log_every=0):
    """``steps`` Adam steps on random minibatches of ``data`` (dict of numpy arrays).
    Returns the metrics (numpy floats) of every ``log_every``-th step (0: only the last)."""
    if steps < 1 or batch < 2:
      raise ValueError(f'steps must be >= 1 and batch >= 2, got {steps}, {batch}.')
    rng = np.random.default_rng(seed)
    n = len(data[self.modalities[0]])
    batch = min(batch, n)
    history = []
    for step in range(steps):
      idx = rng.choice(n, batch, replace=False)
      metrics = self._step({m: tf.constant(data[m][idx]) for m in self.modalities})
      if (log_every and step % log_every == 0) or step == steps - 1:
        history.append({'step': step, **{k: float(v) for k, v in metrics.items()}})
    return history

  def embed(self, data, batch=500):
    """Expert and fused posterior statistics of every sample of ``data`` (numpy)."""
    n = len(data[self.modalities[0]])
    parts = {'means': [], 'stds': [], 'fused_mean': [], 'fused_std': []}
    for start in range(0, n, batch):
      obs = {m: tf.constant(data[m][start:start + batch]) for m in self.modalities}
      means, stds = self.encode(obs)
      flags = tf.ones([len(means), tf.shape(means[0])[0]])
      mean, std = fusion.product_of_experts(means, stds, flags)
      parts['means'].append(np.stack([x.numpy() for x in means]))
      parts['stds'].append(np.stack([x.numpy() for x in stds]))
      parts['fused_mean'].append(mean.numpy())
      parts['fused_std'].append(std.numpy())
    return {
        'means': np.concatenate(parts['means'], 1),
        'stds': np.concatenate(parts['stds'], 1),
        'fused_mean': np.concatenate(parts['fused_mean'], 0),
        'fused_std': np.concatenate(parts['fused_std'], 0)
    }
