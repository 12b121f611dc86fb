"""Diagnostics of behaviour learning: numbers, not curves.

Public API::

    behaviour(agent, batch) -> dict of floats
    openloop(agent, batch) -> dict of floats
    openloop_videos(agent, batch) -> {image modality: (T, 3H, B W, 3) uint8}

On posterior states of a replay batch and on the trajectories the actor imagines from
them (appendix A, eq. 18-19), without updating anything:

* ``actor_mean_abs``, ``actor_std``: the actor's pre-tanh mean |mu| and std; and
  ``actor_saturated``: the fraction of sampled actions with |a| > 0.99, where
  d tanh / dx < 0.02 and the reparameterised gradient vanishes.
* ``actor_mode_spread``: how much the mode action depends on the state (the std over
  states of the mode action, averaged over action dims; 0 for a constant policy).
* ``actor_grad_norm``: the global norm of d(actor loss) / d(actor weights).
* ``value_post`` / ``value_imag``: mean value on posterior / imagined states;
  ``value_imag_first`` / ``value_imag_last``: on the first / last imagined states (a
  value that grows along imagination feeds its own targets: the bootstrap);
  ``reward_post`` / ``reward_imag``: the same for the predicted reward.
* ``drift_z``: how far imagined features leave the posterior's: the mean absolute
  z-score of imagined features under the posterior features' per-dimension mean and std
  (about 0.8 for features drawn from the same distribution), at the first and the last
  imagined step (``drift_z_first``, ``drift_z_last``).
* ``feat_abs_max``: the largest |feature| on posterior states.
* ``mpc_shift``: how far latent-guided MPC moves the collection action (sampled actor
  action, sampled imagination, one ascent step of ``ActorCritic.mpc_lr``; clipped to the
  bounds as the env receives it): the mean |a_MPC - a|, whether or not the run uses MPC.
"""
import tensorflow as tf

from mummi_tf.model import behavior


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
    reward = ac.reward_mode(wm, feat)
    value = ac.value(feat)
    returns = behavior.lambda_return(reward[:-1], value[:-1], ac.discount, value[-1], ac.lambda_)
    actor_loss = -tf.reduce_mean(returns)
  grads = tape.gradient(actor_loss, ac.actor.trainable_variables)
  moved = behavior.latent_mpc(start, action, ac.actor.sample, wm.img_step, wm.feat,
                              lambda f: ac.reward_mode(wm, f), ac.value, ac.mpc_horizon,
                              ac.discount, ac.lambda_, ac.mpc_lr)
  f_mean, f_std = tf.nn.moments(post_feat, 0)
  f_std = tf.sqrt(f_std) + 1e-6
  return {
      'actor_mean_abs': tf.reduce_mean(tf.abs(mean)),
      'actor_std': tf.reduce_mean(std),
      'actor_mode_spread': tf.reduce_mean(tf.math.reduce_std(ac.actor.mode(post_feat), 0)),
      'actor_saturated': tf.reduce_mean(tf.cast(tf.abs(action) > 0.99, tf.float32)),
      'actor_grad_norm': tf.linalg.global_norm([g for g in grads if g is not None]),
      'value_post': tf.reduce_mean(ac.value(post_feat)),
      'value_imag': tf.reduce_mean(value),
      'value_imag_first': tf.reduce_mean(value[0]),
      'value_imag_last': tf.reduce_mean(value[-1]),
      'reward_post': tf.reduce_mean(ac.reward_mode(wm, post_feat)),
      'reward_imag': tf.reduce_mean(reward),
      'return_imag': tf.reduce_mean(returns),
      'drift_z_first': _z(feat[0], f_mean, f_std),
      'drift_z_last': _z(feat[-1], f_mean, f_std),
      'feat_abs_max': tf.reduce_max(tf.abs(post_feat)),
      'mpc_shift': tf.reduce_mean(tf.abs(tf.clip_by_value(moved, -1.0, 1.0) - action)),
  }


def _openloop_feats(wm, data, context):
  """Posteriors of the whole sequences, and the features imagined after ``context``
  filtered steps with the recorded actions, (B, T - context, F)."""
  post, _ = wm.observe(data)
  state = {k: v[:, context - 1] for k, v in post.items()}
  action = tf.cast(data['action'], tf.float32)
  feats = []
  for t in range(context, action.shape[1]):
    state = wm.img_step(state, action[:, t])
    feats.append(wm.feat(state))
  return post, tf.stack(feats, 1)


def openloop(agent, batch, context=5, horizons=(1, 5, 15)):
  """Upstream Dreamer's open-loop check, as numbers: filter ``context`` steps, then
  imagine the rest of each sequence with the *recorded* actions.

  Returns ``reward_mse_post`` (reward head on posterior states of the same steps),
  ``reward_mse_openloop`` (on the imagined prior states, all steps), ``reward_mse_k<K>``
  (on the K-th imagined step alone, for each of ``horizons`` the sequences reach: the
  actor learns from steps 1..15), ``reward_var`` (the rewards' own variance: an error near
  it means the model predicts nothing).
  """
  wm = agent.world_model
  data = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
  post, feat = _openloop_feats(wm, data, context)
  reward = tf.cast(data['reward'][:, context:], tf.float32)
  post_feat = wm.feat({k: v[:, context:] for k, v in post.items()})
  error = lambda f: tf.square(wm.reward(f).mode() - reward)  # (B, T - context)
  imagined = error(feat)
  out = {
      'reward_mse_post': tf.reduce_mean(error(post_feat)),
      'reward_mse_openloop': tf.reduce_mean(imagined),
      'reward_var': tf.math.reduce_variance(reward)
  }
  for k in horizons:
    if k <= imagined.shape[1]:
      out[f'reward_mse_k{k}'] = tf.reduce_mean(imagined[:, k - 1])
  return out


def openloop_videos(agent, batch, context=5):
  """Upstream Dreamer's ``agent/openl`` for each image modality of a decoder method:
  {modality: (T, 3H, B W, 3) uint8}, per sequence (side by side) the observed frames on
  top, the model's below (reconstructions for ``context`` steps, then open-loop
  predictions from the recorded actions) and their difference at the bottom (grey = 0).
  {} for the contrastive methods, which have no decoder.
  """
  wm = agent.world_model
  if not hasattr(wm.heads, 'decode'):
    return {}
  data = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
  post, feat = _openloop_feats(wm, data, context)
  recon_feat = wm.feat({k: v[:, :context] for k, v in post.items()})
  videos = {}
  for m, (kind, _) in wm.modalities.items():
    if kind != 'image':
      continue
    truth = tf.cast(data[m], tf.float32) / 255.0
    model = tf.concat([wm.heads.decode(m, recon_feat), wm.heads.decode(m, feat)], 1) + 0.5
    error = (model - truth + 1.0) / 2.0
    frames = tf.concat([truth, model, error], 2)  # (B, T, 3H, W, C)
    frames = tf.transpose(frames, [1, 2, 0, 3, 4])  # (T, 3H, B, W, C)
    shape = tf.shape(frames)
    frames = tf.reshape(frames, [shape[0], shape[1], shape[2] * shape[3], shape[4]])
    if frames.shape[-1] == 1:
      frames = tf.repeat(frames, 3, -1)
    videos[m] = tf.cast(tf.clip_by_value(frames, 0.0, 1.0) * 255.0, tf.uint8).numpy()
  return videos
