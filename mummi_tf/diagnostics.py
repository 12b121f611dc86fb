"""Diagnostics of behaviour learning (issue 11's ladder): numbers, not curves.

Public API::

    behaviour(agent, batch) -> dict of floats

On posterior states of a replay batch and on the trajectories the actor imagines from
them (appendix A, eq. 18-19), without updating anything:

* ``actor_mean_abs``, ``actor_std``: the actor's pre-tanh mean |mu| and std; and
  ``actor_saturated``: the fraction of sampled actions with |a| > 0.99, where
  d tanh / dx < 0.02 and the reparameterised gradient vanishes.
* ``actor_grad_norm``: the global norm of d(actor loss) / d(actor weights).
* ``value_post`` / ``value_imag``: mean value on posterior / imagined states;
  ``reward_post`` / ``reward_imag``: the same for the predicted reward.
* ``drift_z``: how far imagined features leave the posterior's: the mean absolute
  z-score of imagined features under the posterior features' per-dimension mean and std
  (about 0.8 for features drawn from the same distribution), at the first and the last
  imagined step (``drift_z_first``, ``drift_z_last``).
* ``feat_abs_max``: the largest |feature| on posterior states.
"""
import tensorflow as tf

from mummi_tf import behavior


def _z(feat, mean, std):
  return tf.reduce_mean(tf.abs((feat - mean) / std))


def behaviour(agent, batch):
  """The diagnostics above for ``agent`` on ``batch`` (B, T, ...) numpy arrays."""
  wm, ac = agent.world_model, agent.behavior
  data = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
  post, _ = wm.observe(data)
  start = {k: tf.reshape(v, [-1] + v.shape[2:].as_list()) for k, v in post.items()}
  post_feat = wm.feat(start)
  mean, std = ac.actor.params(post_feat)
  action = ac.actor.sample(post_feat)
  with tf.GradientTape() as tape:
    feat, _ = behavior.imagine(start, ac.actor.sample, wm.img_step, wm.feat, ac.horizon)
    reward = ac._reward_mode(wm, feat)  # pylint: disable=protected-access
    value = ac.value(feat)
    returns = behavior.lambda_return(reward[:-1], value[:-1], ac.discount, value[-1],
                                     ac.lambda_)
    actor_loss = -tf.reduce_mean(returns)
  grads = tape.gradient(actor_loss, ac.actor.trainable_variables)
  f_mean, f_std = tf.nn.moments(post_feat, 0)
  f_std = tf.sqrt(f_std) + 1e-6
  return {
      'actor_mean_abs': tf.reduce_mean(tf.abs(mean)),
      'actor_std': tf.reduce_mean(std),
      'actor_saturated': tf.reduce_mean(tf.cast(tf.abs(action) > 0.99, tf.float32)),
      'actor_grad_norm': tf.linalg.global_norm([g for g in grads if g is not None]),
      'value_post': tf.reduce_mean(ac.value(post_feat)),
      'value_imag': tf.reduce_mean(value),
      'reward_post': tf.reduce_mean(ac._reward_mode(wm, post_feat)),  # pylint: disable=protected-access
      'reward_imag': tf.reduce_mean(reward),
      'return_imag': tf.reduce_mean(returns),
      'drift_z_first': _z(feat[0], f_mean, f_std),
      'drift_z_last': _z(feat[-1], f_mean, f_std),
      'feat_abs_max': tf.reduce_max(tf.abs(post_feat)),
  }
