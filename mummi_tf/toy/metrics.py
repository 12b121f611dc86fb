"""Metrics of the toy experiment: consistency, calibration, linear probes.

* ``consistency``: how well the two experts map one observation to one latent point.
  ``distance`` is the raw mean squared distance between the experts' means relative to
  the latent spread (``mummi_tf.model.objectives.cross_modal_distance``: 0 identical, about 2
  unrelated). Because InfoNCE fixes the experts only up to an affine map and an ignored
  expert (~0 precision) has an arbitrary mean, ``affine_r2`` is reported beside it: the
  held-out R^2 of predicting one expert's mean from the other's with a linear map (both
  directions, then their mean). With independent sensors (x and y, Fig. 20) the experts
  should *not* predict each other; there ``affine_r2`` is near 0 for any good model.
* ``precision_share``: each expert's share of the fused precision of eq. (11), averaged
  over latent dimensions and samples (``mummi_tf.model.fusion.precision_shares``), plus the unit
  prior expert's share. Calibrated experts both carry weight; a share near 0 means the
  fusion ignores that sensor (the paper's Fig. 1 failure).
* ``probe_r2``: held-out R^2 of a linear probe from one expert's mean (or the fused mean)
  to the true position, averaged over x and y; ``probe_r2_axes`` per axis.

Probes and maps are fitted on a fit set and scored on a separate evaluation set.
"""
import numpy as np
import tensorflow as tf

from mummi_tf.model import fusion
from mummi_tf.model import objectives


def r2(pred, target):
  """Coefficient of determination per output column (N, K) -> (K,); 0 where the target
  is constant."""
  target = np.asarray(target, np.float64)
  sse = np.sum((target - pred)**2, 0)
  sst = np.sum((target - target.mean(0))**2, 0)
  return np.where(sst > 1e-12, 1.0 - sse / np.maximum(sst, 1e-12), 0.0)


def linear_fit(x, y, ridge=1e-6):
  """Least-squares affine map x -> y (with a bias); returns a function."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  mean_x, mean_y = x.mean(0), y.mean(0)
  xc = x - mean_x
  gram = xc.T @ xc + ridge * len(x) * np.eye(x.shape[1])
  weights = np.linalg.solve(gram, xc.T @ (y - mean_y))
  return lambda z: (np.asarray(z, np.float64) - mean_x) @ weights + mean_y


def probe_r2(fit_x, fit_y, eval_x, eval_y):
  """Per-column held-out R^2 of a linear probe fitted on (fit_x, fit_y)."""
  return r2(linear_fit(fit_x, fit_y)(eval_x), eval_y)


def _variance_weighted_r2(pred, target):
  """R^2 of all columns together (1 - total SSE / total SST)."""
  target = np.asarray(target, np.float64)
  sst = np.sum((target - target.mean(0))**2)
  if sst <= 1e-12:
    return 0.0
  return float(1.0 - np.sum((target - pred)**2) / sst)


def precision_shares(stds):
  """(M, N, L) expert stds -> (shares (M,), prior share): ``fusion.precision_shares``
  (unit prior expert included) averaged over samples."""
  stds = tf.constant(np.asarray(stds, np.float32))
  shares, prior = fusion.precision_shares(stds, tf.ones(stds.shape[:2]))
  return tf.reduce_mean(shares, 1).numpy().astype(np.float64), float(tf.reduce_mean(prior))


def cross_modal_distance(means):
  """``objectives.cross_modal_distance`` of (M, N, L) expert means, all present."""
  means = [tf.constant(np.asarray(m, np.float32)) for m in means]
  flags = [tf.ones(m.shape[:1]) for m in means]
  return float(objectives.cross_modal_distance(means, flags))


def evaluate(fit, held_out, modalities):
  """All metrics of one trained model.

  ``fit`` / ``held_out``: dicts from ``ToyModel.embed`` plus ``state`` (N, 2) true
  positions. Returns a JSON-ready dict with ``consistency``, ``precision_share``,
  ``probe_r2`` and ``probe_r2_axes``.
  """
  a, b = modalities
  mean_fit, mean_eval = fit['means'], held_out['means']
  a_to_b = _variance_weighted_r2(linear_fit(mean_fit[0], mean_fit[1])(mean_eval[0]), mean_eval[1])
  b_to_a = _variance_weighted_r2(linear_fit(mean_fit[1], mean_fit[0])(mean_eval[1]), mean_eval[0])
  shares, prior = precision_shares(held_out['stds'])
  result = {
      'consistency': {
          'distance': cross_modal_distance(mean_eval),
          'affine_r2': float(np.mean([a_to_b, b_to_a])),
          f'affine_r2_{a}_to_{b}': a_to_b,
          f'affine_r2_{b}_to_{a}': b_to_a,
      },
      'precision_share': {
          a: float(shares[0]),
          b: float(shares[1]),
          'prior': prior
      },
      'probe_r2': {},
      'probe_r2_axes': {},
  }
  sources = {
      a: (mean_fit[0], mean_eval[0]),
      b: (mean_fit[1], mean_eval[1]),
      'fused': (fit['fused_mean'], held_out['fused_mean'])
  }
  for name, (x_fit, x_eval) in sources.items():
    per_axis = probe_r2(x_fit, fit['state'], x_eval, held_out['state'])
    result['probe_r2'][name] = float(per_axis.mean())
    result['probe_r2_axes'][name] = {'x': float(per_axis[0]), 'y': float(per_axis[1])}
  return result
