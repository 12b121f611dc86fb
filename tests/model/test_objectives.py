"""InfoNCE (eq. 15-16), KL with free nats, masked likelihood, cross-modal distance."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from mummi_tf.model import objectives


def _hand_infonce(q, k, score):
  n = len(q)
  losses, hits = [], []
  for i in range(n):
    if score == 'neg_sq_dist':
      s = [-np.sum((k[j] - q[i])**2) for j in range(n)]
    else:
      s = [np.dot(q[i], k[j]) for j in range(n)]
    losses.append(-(s[i] - np.log(np.sum(np.exp(s)))))
    hits.append(float(np.argmax(s) == i))
  return np.mean(losses), np.mean(hits)


@pytest.mark.parametrize('score', ['neg_sq_dist', 'dot'])
def test_infonce_equals_hand_computed_value(score):
  q = np.array([[0.0, 1.0], [1.0, 0.5], [-0.5, 0.2]], np.float32)
  k = np.array([[0.1, 0.8], [-0.3, 0.4], [0.9, 0.6]], np.float32)
  loss, acc = objectives.infonce(q, k, score=score)
  want_loss, want_acc = _hand_infonce(q, k, score)
  assert float(loss) == pytest.approx(want_loss, rel=1e-5)
  assert float(acc) == pytest.approx(want_acc)


def test_infonce_known_numbers():
  # 2 samples, 1-D: scores [[0, -1], [-1, 0]] -> loss = log(1 + e^-1), acc 1.
  loss, acc = objectives.infonce([[0.0], [1.0]], [[0.0], [1.0]])
  assert float(loss) == pytest.approx(np.log(1 + np.exp(-1.0)), rel=1e-6)
  assert float(acc) == 1.0


def test_infonce_flattens_batch_and_time():
  rng = np.random.default_rng(0)
  q = rng.normal(size=(2, 3, 4)).astype(np.float32)
  k = rng.normal(size=(2, 3, 4)).astype(np.float32)
  loss, _ = objectives.infonce(q, k)
  want, _ = _hand_infonce(q.reshape(6, 4), k.reshape(6, 4), 'neg_sq_dist')
  assert float(loss) == pytest.approx(want, rel=1e-5)


def test_masked_rows_and_columns_change_nothing():
  rng = np.random.default_rng(1)
  q = rng.normal(size=(5, 3)).astype(np.float32)
  k = rng.normal(size=(5, 3)).astype(np.float32)
  mask = np.array([1, 0, 1, 1, 0], np.float32)
  loss, acc = objectives.infonce(q, k, mask)
  keep = mask > 0
  want_loss, want_acc = _hand_infonce(q[keep], k[keep], 'neg_sq_dist')
  assert float(loss) == pytest.approx(want_loss, rel=1e-5)
  assert float(acc) == pytest.approx(want_acc)
  q[~keep] = 1e3
  k[~keep] = -1e3
  loss2, _ = objectives.infonce(q, k, mask)
  assert float(loss2) == pytest.approx(float(loss), rel=1e-6)


def test_infonce_gradients_flow_to_both_sides_and_not_from_masked():
  q = tf.Variable(np.random.default_rng(2).normal(size=(4, 2)).astype(np.float32))
  k = tf.Variable(np.random.default_rng(3).normal(size=(4, 2)).astype(np.float32))
  with tf.GradientTape() as tape:
    loss, _ = objectives.infonce(q, k, [1, 1, 1, 0])
  gq, gk = tape.gradient(loss, [q, k])
  assert np.all(np.abs(gq.numpy()[:3]) > 0) and np.all(np.abs(gk.numpy()[:3]) > 0)
  np.testing.assert_array_equal(gq.numpy()[3], 0.0)
  np.testing.assert_array_equal(gk.numpy()[3], 0.0)


def test_bad_score_names_valid_ones():
  with pytest.raises(ValueError, match='neg_sq_dist, dot'):
    objectives.infonce([[0.0]], [[0.0]], score='cosine')


def test_kl_free_nats():
  post = {'mean': tf.zeros([2, 3]), 'std': tf.ones([2, 3])}
  prior = {'mean': tf.ones([2, 3]), 'std': tf.ones([2, 3])}
  loss, kl = objectives.kl_loss(post, prior, free_nats=3.0)
  assert float(kl) == pytest.approx(1.5)  # 3 dims x 0.5
  assert float(loss) == 3.0
  loss, _ = objectives.kl_loss(post, prior, free_nats=1.0)
  assert float(loss) == pytest.approx(1.5)


def test_masked_log_likelihood_ignores_missing_steps():
  dist = tfp.distributions.Normal(tf.zeros([3]), 1.0)
  ll = objectives.masked_log_likelihood(dist, [0.0, 1e3, 0.0], [1.0, 0.0, 1.0])
  assert float(ll) == pytest.approx(-0.5 * np.log(2 * np.pi), rel=1e-6)


def test_cross_modal_distance_zero_for_identical_and_about_two_for_independent():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(2000, 8)).astype(np.float32)
  b = rng.normal(size=(2000, 8)).astype(np.float32)
  ones = np.ones(2000, np.float32)
  assert float(objectives.cross_modal_distance([a, a], [ones, ones])) == 0.0
  assert float(objectives.cross_modal_distance([a, b], [ones, ones])) == (
      pytest.approx(2.0, rel=0.1))


def test_kl_below_the_floor_still_trains_the_prior_only():
  """train_prior: under the free-nats floor the prior keeps following the posterior
  (Dreamer v1's max(KL, free) gives neither side a gradient); above it the gradient is
  exactly that of the KL."""
  def grads(offset, free_nats, train_prior):
    q_mean, p_mean = tf.Variable(tf.zeros([2, 3])), tf.Variable(tf.fill([2, 3], offset))
    with tf.GradientTape() as tape:
      loss, kl = objectives.kl_loss({
          'mean': q_mean,
          'std': tf.ones([2, 3])
      }, {
          'mean': p_mean,
          'std': tf.ones([2, 3])
      }, free_nats, train_prior)
    return [g.numpy() if g is not None else 0.0 for g in tape.gradient(loss, [q_mean, p_mean])
           ], float(kl)

  (dq, dp), kl = grads(0.5, 3.0, True)  # KL 0.375 < 3
  assert kl == pytest.approx(0.375)
  assert np.all(dq == 0) and np.all(dp > 0)  # p moves towards q, q keeps its nats
  (dq, dp), _ = grads(0.5, 3.0, False)
  assert np.all(dq == 0) and np.all(dp == 0)  # Dreamer v1: nothing learns
  for train_prior in (True, False):
    (dq, dp), _ = grads(2.0, 1.0, train_prior)  # KL 6 > 1: both equal the KL's gradient
    np.testing.assert_allclose(dq, np.full([2, 3], -1.0))  # (q - p) / batch
    np.testing.assert_allclose(dp, np.full([2, 3], 1.0))
