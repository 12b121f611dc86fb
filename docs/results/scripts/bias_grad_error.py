"""How far a bfloat16 bias gradient is from the float32 sum, per way of taking it.

Run from the repository root: python docs/results/scripts/bias_grad_error.py
For the row counts of one update at `small.gin` sizes (B 16 x T 50 = 800 images, 6000
imagined states), prints max |error| / max |sum| of: TF's ``BiasAddGrad`` (the gradient of
``tf.nn.bias_add``, what Keras layers use) and ``reduce_sum`` (the gradient of ``y + b``,
what ``mummi_tf.model.networks`` uses), both on the same bfloat16 cotangent, against the float32
sum of that cotangent; for a cotangent of mean 0.5 and of mean 0 (unit variance both).
"""
import json

import tensorflow as tf

SHAPES = {
    'decoder layer 1 (800 x 5 x 5 x 64)': (800, 5, 5, 64),
    'decoder output (800 x 64 x 64 x 3)': (800, 64, 64, 3),
    'imagined states (6000 x 400)': (6000, 400),
    'posterior states (800 x 400)': (800, 400),
}


def error(grad, exact):
  """max |grad - exact| / max |exact|."""
  return float(
      tf.reduce_max(tf.abs(tf.cast(grad, tf.float32) - exact)) / tf.reduce_max(tf.abs(exact)))


out = {}
for (name, shape), mean in [(item, m) for item in SHAPES.items() for m in (0.5, 0.0)]:
  cotangent = tf.cast(tf.random.normal(shape, seed=1) + mean, tf.bfloat16)
  exact = tf.reduce_sum(tf.reshape(tf.cast(cotangent, tf.float32), [-1, shape[-1]]), 0)
  out[f'{name}, mean {mean}'] = {
      'BiasAddGrad': error(tf.raw_ops.BiasAddGrad(out_backprop=cotangent), exact),
      'reduce_sum': error(tf.reduce_sum(tf.reshape(cotangent, [-1, shape[-1]]), 0), exact),
  }
print(json.dumps(out, indent=1))
