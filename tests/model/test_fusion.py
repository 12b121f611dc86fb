"""Product of experts (eq. 11), the prior code's fusion and precision shares."""
import numpy as np
import pytest

from mummi_tf.model import fusion


def _experts(rng, m=3, n=5, d=4):
  means = rng.normal(size=(m, n, d)).astype(np.float32)
  stds = rng.uniform(0.2, 2.0, size=(m, n, d)).astype(np.float32)
  return means, stds


def _closed_form(means, stds, prior):
  """Product of Gaussians by multiplying densities' natural parameters."""
  prec = 1.0 / stds.astype(np.float64)**2
  eta = (prec * means).sum(0)
  lam = prec.sum(0)
  if prior:
    lam = lam + 1.0
  return eta / lam, lam**-0.5


@pytest.mark.parametrize('prior', [True, False])
def test_poe_equals_closed_form_product(prior):
  means, stds = _experts(np.random.default_rng(0))
  flags = np.ones(means.shape[:2], np.float32)
  mean, std = fusion.product_of_experts(list(means), list(stds), list(flags), prior)
  want_mean, want_std = _closed_form(means, stds, prior)
  np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(std, want_std, rtol=1e-5)
  assert mean.dtype == 'float32'


def test_poe_product_of_two_densities_pointwise():
  # N(x; m, s) ∝ N(x; m1, s1) N(x; m2, s2) N(x; 0, 1): compare log densities.
  m1, s1, m2, s2 = 0.7, 0.5, -1.2, 1.5
  mean, std = fusion.product_of_experts(
      np.array([[[m1]], [[m2]]]), np.array([[[s1]], [[s2]]]), np.ones((2, 1)))
  mean, std = float(mean[0, 0]), float(std[0, 0])
  logn = lambda x, m, s: -0.5 * ((x - m) / s)**2 - np.log(s)
  xs = np.linspace(-3, 3, 7)
  prod = logn(xs, m1, s1) + logn(xs, m2, s2) + logn(xs, 0, 1)
  fused = logn(xs, mean, std)
  diff = prod - fused  # constant (normaliser) iff the product is that Gaussian
  np.testing.assert_allclose(diff, diff[0], atol=1e-4)


def test_flag_zero_equals_model_without_that_expert():
  rng = np.random.default_rng(1)
  means, stds = _experts(rng)
  flags = np.ones(means.shape[:2], np.float32)
  flags[1] = 0.0
  mean, std = fusion.product_of_experts(means, stds, flags)
  kept = [0, 2]
  mean2, std2 = fusion.product_of_experts(means[kept], stds[kept], flags[kept])
  np.testing.assert_allclose(mean, mean2, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(std, std2, rtol=1e-6)
  # Whatever the missing expert outputs (even huge values) changes nothing.
  means[1] *= 1e6
  mean3, _ = fusion.product_of_experts(means, stds, flags)
  np.testing.assert_array_equal(mean3, mean)


def test_all_missing_gives_the_prior_expert():
  means, stds = _experts(np.random.default_rng(2))
  flags = np.zeros(means.shape[:2], np.float32)
  mean, std = fusion.product_of_experts(means, stds, flags)
  np.testing.assert_array_equal(mean, np.zeros_like(mean))
  # Within one float32 ulp: a CPU's vector square root may round differently.
  np.testing.assert_allclose(std, np.ones_like(std), rtol=2e-7)


def test_reference_fusion_matches_prior_code_weighting():
  means, stds = _experts(np.random.default_rng(3), m=2, n=1, d=1)
  flags = np.ones((2, 1), np.float32)
  mean, _ = fusion.reference_fusion(means, stds, flags)
  w = 1.0 / stds
  want = (w * means).sum(0) / (w.sum(0) + 0.01)
  np.testing.assert_allclose(mean, want, rtol=1e-5)
  exact, _ = fusion.product_of_experts(means, stds, flags)
  assert not np.allclose(mean, exact)


def test_precision_shares_sum_to_one_and_track_the_sharper_expert():
  stds = np.array([[[0.1, 0.1]], [[3.0, 3.0]]], np.float32)  # (M=2, N=1, D=2)
  flags = np.ones((2, 1), np.float32)
  shares, prior = fusion.precision_shares(stds, flags)
  np.testing.assert_allclose(np.sum(shares, 0) + prior, 1.0, rtol=1e-6)
  assert float(shares[0, 0]) > 0.98 and float(shares[1, 0]) < 0.02
  shares, prior = fusion.precision_shares(stds, np.array([[0.0], [1.0]], np.float32))
  assert float(shares[0, 0]) == 0.0


def test_eq11_fusion_has_no_prior_expert_and_its_shares_say_so():
  """``WorldModel.fusion = 'poe_eq11'``: the product of the modality experts only (paper eq.
  11): one present expert is the fused Gaussian itself; the prior's share is 0 unless every
  expert is missing."""
  means = np.array([[[2.0, -1.0]], [[5.0, 5.0]]], np.float32)
  stds = np.array([[[0.5, 2.0]], [[1.0, 1.0]]], np.float32)
  one = np.array([[1.0], [0.0]], np.float32)
  mean, std = fusion.product_of_experts(means, stds, one, prior=False)
  np.testing.assert_allclose(mean, means[0], rtol=1e-6)
  np.testing.assert_allclose(std, stds[0], rtol=1e-6)
  shrunk, _ = fusion.product_of_experts(means, stds, one)  # the unit expert pulls toward 0
  assert np.all(np.abs(shrunk) < np.abs(means[0]))
  shares, prior = fusion.precision_shares(stds, one, prior=False)
  np.testing.assert_allclose(np.sum(shares, 0) + prior, 1.0, rtol=1e-6)
  assert float(prior[0]) == 0.0 and float(shares[0, 0]) == 1.0
  _, prior = fusion.precision_shares(stds, np.zeros((2, 1), np.float32), prior=False)
  assert float(prior[0]) == 1.0


def test_the_world_model_takes_the_eq11_fusion():
  from mummi_tf.model import mssm
  model = mssm.MSSM({
      'rgb': ('image', (64, 64, 3)),
      'touch': ('vector', (2,))
  }, 2, 'poe_eq11', deter=8, stoch=4, fused=8, hidden=8, cnn_depth=2, embed=16, expert_hidden=8)
  enc = model.encode({
      'rgb': np.zeros((1, 64, 64, 3), np.uint8),
      'touch': np.ones((1, 2), np.float32),
      'rgb_flag': np.zeros((1,), np.float32),
      'touch_flag': np.ones((1,), np.float32)
  })
  np.testing.assert_allclose(enc.fused_mean, enc.means["touch"], rtol=1e-5)  # no unit expert
  np.testing.assert_allclose(enc.fused_std, enc.stds["touch"], rtol=1e-5)
