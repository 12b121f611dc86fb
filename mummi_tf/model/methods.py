"""Method-specific heads and loss terms (paper eq. 15-17, Sec. V-VI, appendix C).

Public API::

    ContrastiveHeads(method, modalities, fused, weights, cvrl_mask=True)
      (MuMMI, MuMMI-b, CVRL) .loss(enc, feat, metrics) -> scalar
    DecoderHeads(modalities, cnn_depth, mlp_units)
      (Dreamer, MSSM-e)      .loss(enc, feat, obs, metrics) -> scalar

``enc`` is an ``mssm.Encoding``, ``feat`` the posterior features z = [s^c, h]
(B, T, F); each ``loss`` writes its terms into ``metrics`` and returns the scalar to
minimise (without the KL and reward terms, which are common to every method).
"""
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from mummi_tf.model import networks
from mummi_tf.model import objectives

tfd = tfp.distributions


def any_present(flags):
  """1 where at least one modality is present."""
  return tf.reduce_max(tf.stack(list(flags.values()), 0), 0)


class ContrastiveHeads(tf.Module):
  """InfoNCE heads.

  mummi:   per modality, score -||mu^m(x_j) - g(z_i)||^2 (eq. 16), loss weight
           lambda_m (eq. 17), masked by the modality's flag.
  mummi_b: the same score against the fused PoE mean b(x^{1:M}), masked where no
           modality is present.
  cvrl:    bilinear score x'(e_j) . z'(z_i) with z' = MLP(200, 200) of the feature and
           x' = MLP(400, 200) of the concatenated (zero-filled) embedding; masked
           where no modality is present when ``cvrl_mask`` (the prior code had no mask).
  """
  def __init__(self, method, modalities, fused, weights, cvrl_mask=True):
    super().__init__(name=f'{method}_heads')
    self._method = method
    self._names = sorted(modalities)
    self._weights = dict(weights)
    self._cvrl_mask = cvrl_mask
    if method == 'cvrl':
      self._query = networks.MLP(200, 1, 200)
      self._key = networks.MLP(400, 1, 200)
    else:  # g_phi of eq. (16): a linear projection of z to the s^f space.
      self._query = keras.layers.Dense(fused, dtype='float32')

  def loss(self, enc, feat, metrics):
    if self._method == 'mummi':
      total = 0.0
      queries = self._query(feat)
      for m in self._names:
        loss, acc = objectives.infonce(queries, enc.means[m], enc.flags[m])
        metrics[f'infonce/{m}'], metrics[f'infonce_acc/{m}'] = loss, acc
        total += self._weights[m] * loss
      return total
    mask = any_present(enc.flags)
    if self._method == 'mummi_b':
      loss, acc = objectives.infonce(self._query(feat), enc.fused_mean, mask)
    else:
      keys = self._key(tf.cast(enc.sf, tf.float32))
      loss, acc = objectives.infonce(
          self._query(feat), keys, mask if self._cvrl_mask else None, 'dot')
    metrics['infonce/fused'], metrics['infonce_acc/fused'] = loss, acc
    return self._weights['fused'] * loss


class DecoderHeads(tf.Module):
  """Unit-variance Gaussian decoders p(x^m | z) (appendix C, Figs. 16-18).

  Images: Dreamer's transposed-conv decoder (64x64); vectors: MLP 3x units ELU.
  Each term is the mean log-likelihood over the steps where the modality is present.
  """
  def __init__(self, modalities, cnn_depth=32, mlp_units=128, target=None):
    """``target(modality, x)``: the space vectors are reconstructed in (the encoders'
    input, e.g. symlog); identity by default."""
    super().__init__(name='decoders')
    self._modalities = dict(modalities)
    self._target = target or (lambda modality, x: x)
    self._decoders = {}
    for m, (kind, shape) in self._modalities.items():
      if kind == 'image':
        if tuple(shape[:2]) != (64, 64):
          raise ValueError(f'decoder for {m!r}: images must be 64x64 for the '
                           f'reconstruction methods (dreamer, mssm_e); got {shape}.')
        self._decoders[m] = networks.ConvDecoder(shape[-1], cnn_depth)
      else:
        self._decoders[m] = networks.MLP(mlp_units, 3, shape[0])

  def decode(self, modality, feat):
    """The decoder's mean of ``modality`` for features (..., F): images in [-0.5, 0.5]."""
    return tf.cast(self._decoders[modality](feat), tf.float32)

  def loss(self, enc, feat, obs, metrics):
    total = 0.0
    for m in sorted(self._modalities):
      kind, shape = self._modalities[m]
      target = tf.cast(obs[m], tf.float32)
      if kind == 'image':
        target = target / 255.0 - 0.5
      else:
        target = tf.cast(self._target(m, target), tf.float32)
      dist = tfd.Independent(tfd.Normal(self._decoders[m](feat), 1.0), len(shape))
      ll = objectives.masked_log_likelihood(dist, target, enc.flags[m])
      metrics[f'recon_loss/{m}'] = -ll
      total -= ll
    return total
