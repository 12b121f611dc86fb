"""The multi-modal state-space model (MSSM), paper eq. (6)-(11).

Public API::

    read_modalities(obs_spec) -> dict name -> ('image' | 'vector', shape)
    MSSM(modalities, action_size, fusion='poe', ...)
      .encode(obs, drop=None) -> Encoding   # s^f input, expert stats, flags
      .initial_state(batch_size) -> state
      .img_step(prev_state, prev_action) -> prior            # p(s^c|h), g(h|s^c,h,a)
      .post_step(prior, sf) -> post                          # q(s^c|s^f,h)
      .obs_step(prev_state, prev_action, obs) -> (post, prior)
      .observe(sf, action, is_first=None) -> (post, prior)   # batch-major (B, T, ...)

State: dict {'mean', 'std', 'stoch', 'deter'} (s^c stats, s^c sample, h), float32.
Fusion 'poe' (MuMMI, MuMMI-b, MSSM-e): one Gaussian expert per modality fused by the
exact product of experts (``fusion.product_of_experts``); 'reference': the prior code's
weighting; 'concat' (CVRL, Dreamer): features concatenated, zero-filled when missing.
"""
import collections

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mummi_tf.model import distribute
from mummi_tf.model import fusion as fusion_lib
from mummi_tf.model import networks

# 'poe': the product with a unit prior expert N(0, 1) (MVAE's convention); 'poe_eq11': of the
# modality experts only, as the paper's eq. 11 writes it; 'reference': the prior code's.
FUSIONS = ('poe', 'poe_eq11', 'reference', 'concat')
SF_INPUTS = ('mean', 'sample')

Encoding = collections.namedtuple('Encoding', 'sf embeds flags means stds fused_mean fused_std')


def _spec_shape_dtype(spec):
  if isinstance(spec, tuple) and len(spec) == 2:
    return tuple(spec[0]), np.dtype(spec[1])
  return tuple(spec.shape), np.dtype(spec.dtype)


def read_modalities(obs_spec):
  """Modalities from an observation spec (keys without ``_flag``).

  ``state`` (the suite's proprioception) is a diagnostic unless the environment made it
  a sensor, which it shows by a ``state_flag`` (``gin/state.gin``).
  """
  out = {}
  for name, spec in obs_spec.items():
    if name.endswith('_flag') or (name == 'state' and 'state_flag' not in obs_spec):
      continue
    shape, dtype = _spec_shape_dtype(spec)
    if len(shape) == 3 and dtype == np.uint8:
      if min(shape[:2]) < 46:
        raise ValueError(f'image {name!r}: {shape} is too small for the 4-layer '
                         'conv encoder; valid are images of at least 46x46 '
                         '(64x64 as in the paper).')
      out[name] = ('image', shape)
    elif len(shape) == 1 and dtype == np.float32:
      out[name] = ('vector', shape)
    else:
      raise ValueError(f'observation {name!r}: {shape} {dtype} is not a modality; valid are '
                       'rank-3 uint8 images (H, W, C) and rank-1 float32 vectors (D,).')
  if not out:
    raise ValueError('obs_spec has no modality (a key other than state/*_flag).')
  return out


class MSSM(tf.Module):
  """Encoders, experts/fusion and the recurrent latent dynamics of the MSSM."""
  def __init__(self, modalities, action_size, fusion='poe', sf_input='mean', deter=200, stoch=30,
               fused=1024, hidden=200, cnn_depth=32, mlp_units=128, embed=1024, expert_hidden=1024,
               min_std=0.1, symlog_vectors=False, name='mssm'):
    super().__init__(name=name)
    if fusion not in FUSIONS:
      raise ValueError(f'fusion must be one of {", ".join(FUSIONS)}; got {fusion!r}.')
    if sf_input not in SF_INPUTS:
      raise ValueError(f'sf_input must be one of {", ".join(SF_INPUTS)}; got {sf_input!r}.')
    self.modalities = dict(modalities)
    self.names = sorted(self.modalities)
    self.fusion = fusion
    self.sf_input = sf_input
    self.symlog_vectors = bool(symlog_vectors)  # vector inputs as symlog(x) (DreamerV3)
    self.action_size = action_size
    self.deter_size, self.stoch_size = deter, stoch
    self.encoders = {
        m: (networks.ConvEncoder(cnn_depth) if kind == 'image' else networks.MLPEncoder(
            mlp_units, embed)) for m, (kind, _) in self.modalities.items()
    }
    if fusion != 'concat':  # q(s^f | x^m): Dense(expert_hidden, ReLU) -> Gaussian.
      self.experts = {m: networks.Expert(expert_hidden, fused, min_std) for m in self.names}
    self._img_in = networks.Dense(hidden, 'elu')
    # h in float32 under a mixed policy: it integrates every step of a sequence and of
    # imagination, and bfloat16's 8-bit mantissa would round its updates away.
    self._cell = keras.layers.GRUCell(deter, dtype='float32')
    self._img_out = networks.Dense(hidden, 'elu')
    self._prior_head = networks.GaussianHead(stoch, min_std)
    self._obs_out = networks.Dense(hidden, 'elu')
    self._post_head = networks.GaussianHead(stoch, min_std)

  @property
  def feat_size(self):
    return self.deter_size + self.stoch_size

  @staticmethod
  def feat(state):
    """z = [s^c, h] (eq. 7-8)."""
    return tf.concat([state['stoch'], state['deter']], -1)

  def flags(self, obs):
    """Presence flags per modality (ones when ``<m>_flag`` is absent)."""
    out = {}
    for m in self.names:
      if f'{m}_flag' in obs:
        out[m] = tf.cast(obs[f'{m}_flag'], tf.float32)
      else:
        lead = tf.shape(obs[m])[:-len(self.modalities[m][1])]
        out[m] = tf.ones(lead, tf.float32)
    return out

  def encode(self, obs, drop=None):
    """Encodes one step or a sequence; ``drop`` (dict of 0/1) removes experts.

    ``drop`` only affects the fused s^f (MSSM-e's random modality dropping); the
    returned ``flags`` are the true presence flags.
    """
    flags = self.flags(obs)
    embeds = {m: self.encoders[m](self.encoder_input(m, obs[m])) for m in self.names}
    if self.fusion == 'concat':
      sf = tf.concat([tf.cast(embeds[m], tf.float32) * flags[m][..., None] for m in self.names], -1)
      return Encoding(sf, embeds, flags, None, None, None, None)
    stats = {m: self.experts[m](embeds[m]) for m in self.names}
    means = [stats[m][0] for m in self.names]
    stds = [stats[m][1] for m in self.names]
    used = [flags[m] * (drop[m] if drop else 1.0) for m in self.names]
    if self.fusion == 'reference':
      mean, std = fusion_lib.reference_fusion(means, stds, used)
    else:
      mean, std = fusion_lib.product_of_experts(means, stds, used, prior=self.fusion == 'poe')
    sf = mean
    if self.sf_input == 'sample':
      sf = mean + std * distribute.normal(tf.shape(mean))
    return Encoding(sf, embeds, flags, dict(zip(self.names, means)), dict(zip(self.names, stds)),
                    mean, std)

  def encoder_input(self, modality, x):
    """What modality's encoder sees: images as stored, vectors as given or symlog(x)."""
    if self.symlog_vectors and self.modalities[modality][0] == 'vector':
      return networks.symlog(tf.cast(x, tf.float32))
    return x

  def initial_state(self, batch_size):
    zeros = lambda n: tf.zeros([batch_size, n], tf.float32)
    return {
        'mean': zeros(self.stoch_size),
        'std': zeros(self.stoch_size),
        'stoch': zeros(self.stoch_size),
        'deter': zeros(self.deter_size)
    }

  @staticmethod
  def _sample(mean, std, noise=None):
    """A reparameterised sample; ``noise``: given standard normals (else drawn)."""
    if noise is None:
      noise = distribute.normal(tf.shape(mean))
    return mean + std * noise

  def img_step(self, prev_state, prev_action, noise=None):
    """h_t = g(s^c_{t-1}, h_{t-1}, a_{t-1}); prior p(s^c_t | h_t) (eq. 9)."""
    x = tf.concat([prev_state['stoch'], tf.cast(prev_action, tf.float32)], -1)
    x = self._img_in(x)
    deter, _ = self._cell(tf.cast(x, tf.float32), [prev_state['deter']])
    mean, std = self._prior_head(self._img_out(deter))
    return {'mean': mean, 'std': std, 'stoch': self._sample(mean, std, noise), 'deter': deter}

  def post_step(self, prior, sf, noise=None):
    """Posterior q(s^c_t | s^f_t, h_t) (eq. 11) from the prior's h_t and s^f_t."""
    x = self._obs_out(tf.concat([prior['deter'], sf], -1))
    mean, std = self._post_head(x)
    return {
        'mean': mean,
        'std': std,
        'stoch': self._sample(mean, std, noise),
        'deter': prior['deter']
    }

  def obs_step(self, prev_state, prev_action, obs):
    prior = self.img_step(prev_state, prev_action)
    return self.post_step(prior, self.encode(obs).sf), prior

  def observe(self, sf, action, is_first=None, state=None):
    """Filters a batch-major sequence of s^f inputs; returns (post, prior) (B, T, .).

    ``action[:, t]`` led to observation t; where ``is_first`` the state and the
    previous action are reset to zeros.
    """
    def swap(x, dtype=tf.float32):
      x = tf.cast(x, dtype)
      return tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))

    if is_first is None:
      is_first = tf.zeros(tf.shape(action)[:2], tf.float32)
    sf, action, is_first = swap(sf), swap(action), swap(is_first)
    batch = tf.shape(action)[1]
    if state is None:
      state = self.initial_state(batch)

    def step(carry, inputs):
      prev, _ = carry
      act, feat, first = inputs[:3]
      prior_noise, post_noise = inputs[3:] or (None, None)
      keep = 1.0 - first[:, None]
      prev = {k: v * keep for k, v in prev.items()}
      prior = self.img_step(prev, act * keep, prior_noise)
      return self.post_step(prior, feat, post_noise), prior

    inputs = (action, sf, is_first)
    if distribute.keyed():  # The sequence's noise (T, B, S), keyed on the batch row.
      shape = [tf.shape(action)[0], batch, self.stoch_size]
      inputs += (distribute.normal(shape, axis=1), distribute.normal(shape, axis=1))
    post, prior = tf.scan(step, inputs, (state, state))
    return ({k: swap(v) for k, v in post.items()}, {k: swap(v) for k, v in prior.items()})
