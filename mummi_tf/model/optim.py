"""Adam with global-norm clipping, loss scaling and skipping of non-finite steps.

Public API::

    opt = Optimizer(name='model', lr=6e-4, clip=30.0, eps=1e-5)
    with tf.GradientTape() as tape:
        loss = ...
    metrics = opt.minimize(tape, loss, variables)   # dict of scalar tensors

``minimize`` works eagerly and inside a ``tf.function``.  It

* clips gradients to a global norm of ``clip`` (prior MuMMI code: 30; Dreamer: 100);
* scales the loss dynamically when the global Keras policy is ``mixed_float16``, with
  tf-keras's own ``LossScaleOptimizer`` (gradients are taken with
  ``output_gradients=scale``, i.e. of ``scale * loss``, then unscaled by it; its scale
  halves on overflow and doubles after ``growth_interval`` finite steps);
* skips the update when the loss or any gradient is non-finite: weights and Adam
  slots stay untouched and ``opt.skipped`` (an int64 ``tf.Variable``) is incremented;
* on several replicas (``mummi_tf.model.distribute``), takes the mean over replicas of the
  loss and of the gradients (each replica's loss being the mean over its rows) before
  all of the above, so clipping and skipping see the global batch's gradient.

Metrics: ``{name}_loss``, ``{name}_grad_norm``, ``{name}_skipped`` and, with loss
scaling, ``{name}_loss_scale``.
"""
import gin
import tensorflow as tf
import tf_keras as keras

from mummi_tf.model import distribute


@gin.configurable
class Optimizer(tf.Module):
  """Adam (``eps`` as in Dreamer) with clipping and non-finite-step skipping."""
  def __init__(self, name, lr, clip=30.0, eps=1e-5, loss_scaling=None, growth_interval=2000):
    """``loss_scaling``: None = on iff the global policy is mixed_float16."""
    super().__init__(name=name)
    if lr <= 0:
      raise ValueError(f'Optimizer {name}: lr must be > 0, got {lr}.')
    self._label = name
    self._clip = clip
    if loss_scaling is None:
      loss_scaling = (keras.mixed_precision.global_policy().compute_dtype == 'float16')
    self._scaling = bool(loss_scaling)
    self._opt = keras.optimizers.Adam(lr, epsilon=eps)
    if self._scaling:
      self._opt = keras.mixed_precision.LossScaleOptimizer(self._opt, initial_scale=2.0**15,
                                                           dynamic_growth_steps=growth_interval)
    self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name=f'{name}_skipped',
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self._built = False

  @property
  def loss_scale(self):
    """The current loss scale (1 without loss scaling)."""
    return self._opt.loss_scale if self._scaling else tf.constant(1.0)

  @property
  def built(self):
    return self._built

  def build(self, variables):
    """Creates the Adam slots (done by the first ``minimize`` otherwise).

    Building eagerly, before the first trace of a ``tf.function`` that calls
    ``minimize``, spares that function a second trace for variable creation.
    """
    if not self._built:
      self._opt.build(list(variables))
      self._built = True

  def minimize(self, tape, loss, variables):
    """One Adam step on ``variables`` from ``tape``; returns a metrics dict."""
    variables = list(variables)
    if not variables:
      raise ValueError(f'Optimizer {self._label}: no variables to optimise.')
    self.build(variables)  # Slots must exist before the conditional update.
    loss = tf.cast(loss, tf.float32)
    grads = tape.gradient(
        loss, variables,
        output_gradients=tf.cast(self.loss_scale, loss.dtype) if self._scaling else None)
    grads = [
        tf.zeros_like(v) if g is None else tf.cast(g, v.dtype) for g, v in zip(grads, variables)
    ]
    replicated = distribute.replicas() > 1
    if replicated:
      loss, grads = distribute.all_mean((loss, grads))
    if self._scaling:
      grads = self._opt.get_unscaled_gradients(grads)
    norm = tf.linalg.global_norm(grads)
    finite = tf.math.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))
    if self._clip:
      grads, _ = tf.clip_by_global_norm(grads, self._clip, use_norm=norm)

    def apply():
      self._opt.apply_gradients(zip(grads, variables))
      return tf.constant(True)

    def skip():
      self.skipped.assign_add(1)
      return tf.constant(False)

    if replicated:
      self._apply_replicated(grads, variables, finite)
    elif self._scaling:  # The wrapper skips a non-finite step itself and adapts its scale.
      self._opt.apply_gradients(zip(grads, variables))
      tf.cond(finite, lambda: tf.constant(True), skip)
    else:
      tf.cond(finite, apply, skip)
    metrics = {
        f'{self._label}_loss': loss,
        f'{self._label}_grad_norm': norm,
        f'{self._label}_skipped': self.skipped.read_value()
    }
    if self._scaling:
      metrics[f'{self._label}_loss_scale'] = tf.identity(self.loss_scale)
    return metrics

  def _apply_replicated(self, grads, variables, finite):
    """The update in a replica context, from gradients already reduced over replicas.

    The conditional update runs in the cross-replica context (a ``merge_call``): a
    branch of a replica-context ``tf.cond`` may not synchronise replicas.
    """
    if self._scaling:  # The wrapper skips and adapts in the cross-replica context itself.
      self._opt.apply_gradients(zip(grads, variables), skip_gradients_aggregation=True)
      self.skipped.assign_add(tf.cast(tf.logical_not(finite), tf.int64))
      return

    def merged(strategy, grads, finite):
      def apply():
        strategy.extended.call_for_each_replica(
            lambda g: self._opt.apply_gradients(zip(g, variables), skip_gradients_aggregation=True),
            args=(grads,))
        return tf.constant(True)

      def skip():
        self.skipped.assign_add(1)
        return tf.constant(False)

      return tf.cond(strategy.experimental_local_results(finite)[0], apply, skip)

    tf.distribute.get_replica_context().merge_call(merged, args=(grads, finite))
