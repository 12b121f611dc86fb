"""Loss terms of MuMMI (eq. 15-17) and the comparison methods.

Public API (plain functions of tensors; results float32)::

    infonce(queries, keys, mask=None, score='neg_sq_dist') -> (loss, top1_accuracy)
    kl_loss(post, prior, free_nats=3.0, train_prior=True) -> (loss, kl)
    masked_log_likelihood(dist, target, flag) -> scalar
    cross_modal_distance(means, flags) -> scalar

``queries`` (..., D) are transformed latent features g(z_i); ``keys`` (..., D) the
observation codes of the same (..., ) positions; all leading dims are flattened into N
samples, so each sample's positive is the key at its own position and the other N-1
keys are its negatives (paper Sec. III: the (B x T) - 1 other observations of the batch).
"""
import tensorflow as tf
import tensorflow_probability as tfp

from mummi_tf.model import distribute

tfd = tfp.distributions

SCORES = ('neg_sq_dist', 'dot')


def _flatten(x):
  x = tf.cast(x, tf.float32)
  return tf.reshape(x, [-1, tf.shape(x)[-1]])


def infonce(queries, keys, mask=None, score='neg_sq_dist'):
  """InfoNCE loss (negative of the bound in eq. 15) and top-1 accuracy.

  ``score = 'neg_sq_dist'``: the density ratio of eq. (16) per time step,
  log f(x_j, z_i) = -||keys_j - queries_i||^2 (MuMMI: keys = expert means mu^m).
  ``score = 'dot'``: the bilinear score queries_i . keys_j (CVRL).
  ``mask`` (...) float: 0 removes a sample both as a positive (its row leaves the
  mean) and as a negative (its column gets probability 0 in every row).
  Loss = mean over unmasked i of -log softmax_j(score(i, j))[i]; accuracy = fraction
  of unmasked i whose highest-scoring key is its own.  Computed in float32.
  """
  if score not in SCORES:
    raise ValueError(f'score must be one of {", ".join(SCORES)}; got {score!r}.')
  q, k = _flatten(queries), _flatten(keys)
  if distribute.replicas() > 1:
    return _infonce_replicated(q, k, mask, score)
  logits = tf.matmul(q, k, transpose_b=True)
  if score == 'neg_sq_dist':
    logits = (2.0 * logits - tf.reduce_sum(q * q, -1)[:, None] - tf.reduce_sum(k * k, -1)[None, :])
  n = tf.shape(q)[0]
  if mask is None:
    mask = tf.ones([n], tf.float32)
  mask = tf.reshape(tf.cast(mask, tf.float32), [-1])
  logits = tf.where(mask[None, :] > 0, logits, -1e9 * tf.ones_like(logits))
  labels = tf.range(n)
  ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
  count = tf.maximum(tf.reduce_sum(mask), 1.0)
  return tf.reduce_sum(mask * ce) / count, tf.reduce_sum(mask * correct) / count


def _infonce_replicated(q, k, mask, score):
  """``infonce`` on one replica of several: this replica's queries against every
  replica's keys (the negatives of the global batch), over the global mask count."""
  mask = tf.ones([tf.shape(q)[0]], tf.float32) if mask is None else mask
  mask = tf.reshape(tf.cast(mask, tf.float32), [-1])
  k, offset = distribute.gather_rows(k)
  column_mask, _ = distribute.gather_rows(mask)
  logits = tf.matmul(q, k, transpose_b=True)
  if score == 'neg_sq_dist':
    logits = (2.0 * logits - tf.reduce_sum(q * q, -1)[:, None] - tf.reduce_sum(k * k, -1)[None, :])
  logits = tf.where(column_mask[None, :] > 0, logits, -1e9 * tf.ones_like(logits))
  labels = tf.range(tf.shape(q)[0]) + offset
  ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
  count = distribute.denominator(tf.reduce_sum(mask))
  return tf.reduce_sum(mask * ce) / count, tf.reduce_sum(mask * correct) / count


def kl_loss(post, prior, free_nats=3.0, train_prior=True):
  """KL[q(s^c_t | s^f_t, h_t) || p(s^c_t | h_t)] (eq. 10/17), with free nats.

  ``post``/``prior``: dicts with 'mean' and 'std' (..., S).  KL summed over dims,
  averaged over batch and time.  Returns (loss, kl).

  ``train_prior=False`` is Dreamer v1's term, max(KL, free_nats): while the KL is
  under the floor neither side gets a gradient, so the prior p(s^c | h) -- the
  dynamics every imagined step samples from -- stops learning whenever the
  posterior carries few nats (MuMMI's KL sits at the floor; a low-dimensional
  sensor never leaves it).  ``train_prior=True`` (default) splits the KL by stop-
  gradients into a prior term KL[sg(q) || p], always trained, and a representation
  term max(KL[q || sg(p)], free_nats): above the floor the gradient is exactly
  Dreamer v1's; below it the posterior still gets its free nats and the prior keeps
  following it.
  """
  def kl(q, p):
    return tf.reduce_mean(
        tfd.kl_divergence(
            tfd.MultivariateNormalDiag(q['mean'], q['std']),
            tfd.MultivariateNormalDiag(p['mean'], p['std'])))

  value = distribute.global_value(kl(post, prior))  # the clamp sees the global batch
  if not train_prior:
    return tf.maximum(value, free_nats), value
  stop = lambda d: {k: tf.stop_gradient(d[k]) for k in ('mean', 'std')}
  prior_term = kl(stop(post), prior)
  representation = tf.maximum(distribute.global_value(kl(post, stop(prior))), free_nats)
  # The value stays max(KL, free_nats); the prior term adds only its gradient.
  return representation + prior_term - tf.stop_gradient(prior_term), value


def masked_log_likelihood(dist, target, flag):
  """Mean of ``dist.log_prob(target)`` over the positions where ``flag`` is 1.

  The reconstruction term E_q[log p(x^m_t | z_t)] of eq. (10) for a missing
  observation is dropped (Dreamer and MSSM-e baselines).
  """
  flag = tf.cast(flag, tf.float32)
  ll = dist.log_prob(tf.cast(target, tf.float32))
  return tf.reduce_sum(flag * ll) / distribute.denominator(tf.reduce_sum(flag))


def cross_modal_distance(means, flags):
  """Mean squared distance between expert means of every modality pair, relative
  to the latent spread (mean over modalities of the summed per-dim variance of the
  expert mean across samples).  About 2 for unrelated codes, 0 for identical ones.
  Raw and not invariant to affine maps between experts (which agree only up to one, see
  the toy 2-D world, docs/evidence-tools.md): report it
  beside invariant measures.  ``means``: list of (..., D); ``flags``: list of (...).
  """
  means = [_flatten(m) for m in means]
  flags = [tf.reshape(tf.cast(f, tf.float32), [-1]) for f in flags]
  spreads, dists = [], []
  for mean, flag in zip(means, flags):
    count = tf.maximum(tf.reduce_sum(flag), 1.0)
    centre = tf.reduce_sum(flag[:, None] * mean, 0) / count
    spreads.append(tf.reduce_sum(flag[:, None] * tf.square(mean - centre), [0, 1]) / count)
  for i in range(len(means)):
    for j in range(i + 1, len(means)):
      both = flags[i] * flags[j]
      d = tf.reduce_sum(tf.square(means[i] - means[j]), -1)
      dists.append(tf.reduce_sum(both * d) / tf.maximum(tf.reduce_sum(both), 1.0))
  spread = tf.maximum(tf.add_n(spreads) / len(spreads), 1e-8)
  return tf.add_n(dists) / len(dists) / spread
