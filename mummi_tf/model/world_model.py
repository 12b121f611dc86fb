"""World model: the MSSM trained by one of five methods (paper Sec. III, V, VI).

Public API (docs/ARCHITECTURE.md)::

    wm = WorldModel(obs_spec, action_size)        # gin: method, sizes, fusion, weights
    wm.initial_state(batch_size) -> state         # {'mean', 'std', 'stoch', 'deter'}
    wm.obs_step(prev_state, prev_action, obs) -> (post, prior)
    wm.img_step(prev_state, prev_action) -> prior
    wm.observe(data) -> (post, prior)             # batch-major (B, T, ...)
    wm.feat(state) -> z = [s^c, h];  wm.feat_size
    wm.reward(feat) -> tfd.Normal (unit variance)
    wm.update(data) -> (post, metrics)            # one optimiser step, traceable
    wm.train_step(data)                           # tf.function(update)
    wm.build(data=None) # optional: create every variable eagerly (before
                        # compiling ``update``: no variable-creation retrace)

Methods (``WorldModel.method``): 'mummi' (PoE + per-expert InfoNCE, eq. 17),
'mummi_b' (PoE + InfoNCE on the fused mean), 'cvrl' (concatenation + bilinear
InfoNCE), 'dreamer' (concatenation + reconstruction), 'mssm_e' (PoE + reconstruction
ELBO, eq. 10, with random modality dropping).  Every method adds
kl_scale * max(KL[q(s^c)||p(s^c|h)], free_nats) - E[log p(r | z)].

Design decisions:

* ``sf_input = 'mean'`` (default): q(s^c | s^f, h) receives the fused PoE mean, not a
  sample.  With a unit prior expert and 1024 dims, a sample of a weakly informed s^f
  is mostly N(0, 1) noise that swamps the 30-dim s^c posterior; the mean carries the
  same information without that variance, and the prior code fed a deterministic
  fused code.  ``'sample'`` (reparameterised) is the literal reading of eq. (11).
* ``sf_kl = 'none'`` (default): eq. (9)'s p(s^f | s^c) is not modelled, so the KL of
  eq. (17) is the s^c term only, as in the prior code.  Under MuMMI, s^f is tied to z
  by the InfoNCE term instead; a KL over 1024 s^f dims would outweigh the 30-dim s^c
  KL (free nats 3 in total) and pull every expert toward the p(s^f|s^c) mean, the
  collapse the paper's Fig. 1 warns about.  ``'learned'``: a Gaussian head
  p(s^f | s^c) and the analytic KL[q(s^f | x^{1:M}) || p(s^f | s^c_sample)] scaled
  by ``sf_kl_scale`` — the second term of the KL of the joint (s^c, s^f).
"""
import inspect

import gin
import tensorflow as tf
import tensorflow_probability as tfp

from mummi_tf.errors import UsageError
from mummi_tf.model import distribute
from mummi_tf.model import fusion as fusion_lib
from mummi_tf.model import methods as methods_lib
from mummi_tf.model import mssm as mssm_lib
from mummi_tf.model import networks
from mummi_tf.model import objectives
from mummi_tf.model import optim
from mummi_tf.model import precision

tfd = tfp.distributions

METHODS = ('mummi', 'mummi_b', 'cvrl', 'dreamer', 'mssm_e')
SF_KL = ('none', 'learned')


def configured_method():
  """The method the gin configuration selects (``WorldModel.method``, else its default)."""
  try:
    return gin.query_parameter('WorldModel.method')
  except ValueError:  # not bound: the constructor's default
    return inspect.signature(WorldModel).parameters['method'].default


def check_method():
  """``UsageError`` naming the valid methods when the configured one is not one of them."""
  if configured_method() not in METHODS:
    raise UsageError(f'unknown method {configured_method()!r}; valid: {", ".join(METHODS)}')


@gin.configurable
class WorldModel(tf.Module):
  """MSSM + reward head + the chosen method's loss and optimiser."""
  def __init__(self, obs_spec, action_size, method='mummi', deter=200, stoch=30, fused=1024,
               hidden=200, cnn_depth=32, mlp_units=128, embed=1024, expert_hidden=1024,
               fusion='poe', sf_input='mean', sf_kl='none', sf_kl_scale=1.0, image_weight=1.0,
               vector_weight=0.001, infonce_weights=None, fused_weight=1.0, kl_scale=1.0,
               free_nats=3.0, train_prior=True, reward_units=400, reward_layers=2, cvrl_mask=True,
               drop_prob=0.3, lr=6e-4, clip=30.0, eps=1e-5, symlog_vectors=False,
               name='world_model'):
    """Sizes: h = ``deter``, s^c = ``stoch``, s^f = ``fused`` (units).

    ``fusion`` ('poe': with a unit prior expert | 'poe_eq11': the modality experts only, eq. 11
    | 'reference': the prior code's) applies to the PoE methods; CVRL and Dreamer always
    concatenate.  lambda_m (eq. 17) = ``infonce_weights[m]`` if given, else
    ``image_weight`` for images and ``vector_weight`` for vectors (prior code: 1, 1,
    0.001); ``fused_weight`` for MuMMI-b / CVRL.  ``drop_prob``: MSSM-e's per-step
    probability of dropping each expert while training.  ``symlog_vectors``: vector
    modalities enter the encoders, and are reconstructed, as symlog(x) (DreamerV3), so
    that large-magnitude dimensions (joint velocities) do not drown small ones (torso
    height) in a unit-variance reconstruction loss.
    """
    super().__init__(name=name)
    if method not in METHODS:
      raise ValueError(f'method must be one of {", ".join(METHODS)}; got {method!r}.')
    if sf_kl not in SF_KL:
      raise ValueError(f'sf_kl must be one of {", ".join(SF_KL)}; got {sf_kl!r}.')
    poe = method in ('mummi', 'mummi_b', 'mssm_e')
    if poe and fusion not in ('poe', 'poe_eq11', 'reference'):
      raise ValueError(f'fusion for {method} must be poe, poe_eq11 or reference; got {fusion!r}.')
    if sf_kl == 'learned' and not poe:
      raise ValueError(f"sf_kl='learned' needs a PoE method; {method} concatenates.")
    self.method = method
    self.action_size = action_size
    self.modalities = mssm_lib.read_modalities(obs_spec)
    self.mssm = mssm_lib.MSSM(self.modalities, action_size, fusion if poe else 'concat', sf_input,
                              deter, stoch, fused, hidden, cnn_depth, mlp_units, embed,
                              expert_hidden, symlog_vectors=symlog_vectors)
    self._reward = networks.MLP(reward_units, reward_layers, 1)
    self._kl_scale, self._free_nats = kl_scale, free_nats
    self._train_prior = bool(train_prior)
    self._sf_kl, self._sf_kl_scale = sf_kl, sf_kl_scale
    self._drop_prob = drop_prob
    if method in ('dreamer', 'mssm_e'):
      self.heads = methods_lib.DecoderHeads(self.modalities, cnn_depth, mlp_units,
                                            self.mssm.encoder_input)
    else:
      weights = {
          m: (image_weight if kind == 'image' else vector_weight)
          for m, (kind, _) in self.modalities.items()
      }
      unknown = set(infonce_weights or {}) - set(weights)
      if unknown:
        raise ValueError(f'infonce_weights: unknown modalities {sorted(unknown)}; '
                         f'valid are {sorted(weights)}.')
      weights.update(infonce_weights or {})
      weights['fused'] = fused_weight
      self.heads = methods_lib.ContrastiveHeads(method, self.modalities, fused, weights, cvrl_mask)
    self._nets = [self.mssm, self._reward, self.heads]
    if sf_kl == 'learned':
      self._sf_prior_hidden = networks.MLP(hidden, 1)
      self._sf_prior = networks.GaussianHead(fused)
      self._nets += [self._sf_prior_hidden, self._sf_prior]
    self.opt = optim.Optimizer('model', lr, clip, eps)
    self._train_fn = None

  # Recurrent state API ----------------------------------------------------
  @property
  def feat_size(self):
    return self.mssm.feat_size

  def initial_state(self, batch_size):
    return self.mssm.initial_state(batch_size)

  def obs_step(self, prev_state, prev_action, obs):
    return self.mssm.obs_step(prev_state, prev_action, obs)

  def img_step(self, prev_state, prev_action):
    return self.mssm.img_step(prev_state, prev_action)

  def feat(self, state):
    return self.mssm.feat(state)

  def reward(self, feat):
    return tfd.Normal(tf.squeeze(self._reward(feat), -1), 1.0)

  def observe(self, data):
    return self.mssm.observe(self.mssm.encode(data).sf, data['action'], data.get('is_first'))

  # Training ---------------------------------------------------------------
  @property
  def model_variables(self):
    return [v for net in self._nets for v in net.trainable_variables]

  def loss(self, data):
    """The method's loss on a batch (B, T, ...); returns (loss, post, metrics)."""
    drop = None
    if self.method == 'mssm_e' and self._drop_prob > 0:
      drop = {
          m: tf.cast(distribute.uniform(tf.shape(data['reward'])) >= self._drop_prob, tf.float32)
          for m in self.mssm.names
      }
    enc = self.mssm.encode(data, drop)
    post, prior = self.mssm.observe(enc.sf, data['action'], data.get('is_first'))
    feat = self.feat(post)
    metrics = {}
    kl_term, metrics['kl'] = objectives.kl_loss(post, prior, self._free_nats, self._train_prior)
    reward_ll = tf.reduce_mean(self.reward(feat).log_prob(tf.cast(data['reward'], tf.float32)))
    metrics['reward_loss'] = -reward_ll
    loss = self._kl_scale * kl_term - reward_ll
    if isinstance(self.heads, methods_lib.DecoderHeads):
      loss += self.heads.loss(enc, feat, data, metrics)
    else:
      loss += self.heads.loss(enc, feat, metrics)
    if self._sf_kl == 'learned':
      p = self._sf_prior(self._sf_prior_hidden(post['stoch']))
      sf_kl = tf.reduce_mean(
          tfd.kl_divergence(
              tfd.MultivariateNormalDiag(enc.fused_mean, enc.fused_std),
              tfd.MultivariateNormalDiag(*p)))
      metrics['sf_kl'] = sf_kl
      loss += self._sf_kl_scale * sf_kl
    if enc.means is not None:
      self._fusion_diagnostics(enc, metrics)
    return loss, post, metrics

  def _fusion_diagnostics(self, enc, metrics):
    """Precision shares (is an expert ignored?) and cross-modal distance.

    Shares come from the experts' own precisions (eq. 11) whatever the fusion, so
    they are comparable between 'poe' and 'reference'.  Expert means enter the
    distance without gradient (it is a metric, not a loss).
    """
    names = self.mssm.names
    flags = [enc.flags[m] for m in names]
    shares, prior_share = fusion_lib.precision_shares([enc.stds[m] for m in names], flags,
                                                      prior=self.mssm.fusion == 'poe')
    for i, m in enumerate(names):
      metrics[f'precision_share/{m}'] = (
          tf.reduce_sum(shares[i] * flags[i]) / tf.maximum(tf.reduce_sum(flags[i]), 1.0))
    metrics['precision_share/prior'] = tf.reduce_mean(prior_share)
    if len(names) > 1:
      metrics['cross_modal_distance'] = objectives.cross_modal_distance(
          [tf.stop_gradient(enc.means[m]) for m in names], flags)

  def build(self, data=None):
    """Creates every variable (heads and Adam slots included) eagerly.

    From ``data[:1, :2]`` when a batch is given, else from zeros shaped by the
    observation spec.  Call it before compiling ``update`` (spares the compiled
    function a retrace for variable creation) and before restoring a checkpoint.
    """
    if self.opt.built:
      return
    if data is None:
      data = {'action': tf.zeros([1, 2, self.action_size]), 'reward': tf.zeros([1, 2])}
      for m, (kind, shape) in self.modalities.items():
        data[m] = tf.zeros((1, 2) + tuple(shape), tf.uint8 if kind == 'image' else tf.float32)
        data[f'{m}_flag'] = tf.ones([1, 2])
    small = {k: v[:1, :2] for k, v in data.items()}
    self.loss(small)
    self.opt.build(self.model_variables)

  def update(self, data, before_step=None):
    """One optimisation step of the method's loss; returns (post, metrics).

    ``before_step(post)``, if given, runs after the loss and before the parameter step, in the
    world model the loss was computed with; the metrics it returns join the step's (upstream
    Dreamer's order: ``Agent.model_step_first``). Its ops may run beside the loss's gradient.
    """
    with tf.GradientTape() as tape:
      loss, post, metrics = self.loss(data)
    if before_step is not None:
      metrics.update(before_step(post))
    metrics.update(self.opt.minimize(tape, loss, self.model_variables))
    return post, metrics

  def train_step(self, data):
    """``update`` compiled once (``precision.compile_fn``: jit_compile via gin)."""
    if self._train_fn is None:
      self.build(data)
      self._train_fn = precision.compile_fn(self.update)
    return self._train_fn(data)
