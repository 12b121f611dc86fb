"""Fusion of modality experts q(s^f | x^m) into q(s^f | x^{1:M}) (paper eq. 11).

Public API (plain functions of tensors; float32 in and out)::

    product_of_experts(means, stds, flags, prior=True) -> (mean, std)
    reference_fusion(means, stds, flags) -> (mean, std)
    precision_shares(stds, flags, prior=True) -> (shares (M, ...), prior share (...))

``means``/``stds``: a list of M tensors (..., D) or one stacked tensor (M, ..., D);
``flags``: a list of M tensors (...) or a stacked (M, ...) tensor, 1 present / 0 missing.
"""
import tensorflow as tf


def _stack(xs):
  if isinstance(xs, (list, tuple)):
    return tf.stack([tf.cast(x, tf.float32) for x in xs], 0)
  return tf.cast(xs, tf.float32)


def product_of_experts(means, stds, flags, prior=True):
  """Exact product of diagonal Gaussian experts, paper eq. (11).

  The product of N(mu_m, sigma_m^2) (and, with ``prior``, a unit Gaussian expert
  N(0, 1)) is Gaussian with precision T = [1 +] sum_m f_m / sigma_m^2 and mean
  sum_m (f_m / sigma_m^2) mu_m / T, with f_m the presence flag: an expert with f_m = 0
  contributes exactly nothing ("we can simply drop the expert").  With every expert
  missing the result is the prior expert N(0, 1); without a prior expert that case
  has no product, and the unit Gaussian is returned as well.  Computed in float32.

  Returns (mean, std), each (..., D).
  """
  means, stds, flags = _stack(means), _stack(stds), _stack(flags)
  precision = flags[..., None] / tf.square(stds)
  total = tf.reduce_sum(precision, 0)
  weighted = tf.reduce_sum(precision * means, 0)
  if prior:
    total += 1.0
  else:
    empty = tf.equal(total, 0.0)
    total = tf.where(empty, tf.ones_like(total), total)
  return weighted / total, 1.0 / tf.sqrt(total)  # sqrt is correctly rounded; rsqrt is not


def reference_fusion(means, stds, flags):
  """The prior MuMMI code's fusion, for comparison (``fusion = 'reference'``).

  Weights w_m = f_m / sigma_m (not the precision 1 / sigma_m^2), mean
  sum_m w_m mu_m / (sum_m w_m + 0.01), no prior expert.  The code used the mean only;
  the std returned here is that of the exact product without a prior expert (unit
  when every expert is missing), so that ``sf_input = 'sample'`` stays defined.
  """
  means, stds, flags = _stack(means), _stack(stds), _stack(flags)
  weights = flags[..., None] / stds
  mean = tf.reduce_sum(weights * means, 0) / (tf.reduce_sum(weights, 0) + 0.01)
  _, std = product_of_experts(means, stds, flags, prior=False)
  return mean, std


def precision_shares(stds, flags, prior=True):
  """Each expert's share of the fused precision (eq. 11), averaged over dims; with
  ``prior``, the unit prior expert's precision counts in the total (``product_of_experts``).

  Returns (shares (M, ...), prior_share (...)): a share near 0 for a present
  modality means its expert is ignored by the fusion (the paper's Fig. 1 failure); without
  ``prior`` the prior's share is 0, except where every expert is missing (1: the fallback).
  """
  stds, flags = _stack(stds), _stack(flags)
  precision = flags[..., None] / tf.square(stds)
  total = tf.reduce_sum(precision, 0)
  own = tf.ones_like(total) if prior else tf.cast(tf.equal(total, 0.0), total.dtype)
  total += own
  return (tf.reduce_mean(precision / total, -1), tf.reduce_mean(own / total, -1))
