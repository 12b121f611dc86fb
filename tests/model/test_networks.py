"""The Keras building blocks: bias gradients under bfloat16, the pointwise transposed conv."""
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from mummi_tf.model import networks


def _bias_grad(layer, x, cotangent):
  with tf.GradientTape() as tape:
    y = layer(x)
  return tape.gradient(y, layer.bias, output_gradients=tf.cast(cotangent, y.dtype))


LAYERS = {
    # (make layer, input shape): the rows of one update (decoder output, imagined states).
    'dense': (lambda: networks.Dense(400), (6000, 64)),
    'conv': (lambda: networks.Conv2D(16, 4, 2), (200, 64, 64, 3)),
    'deconv': (lambda: networks.Conv2DTranspose(3, 6, 2), (200, 30, 30, 16)),
}


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_bias_gradient_under_mixed_bfloat16_is_the_float32_sum(name):
  make, shape = LAYERS[name]
  x = tf.random.normal(shape)
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  layer = make()
  out_shape = layer(x).shape
  cotangent = tf.random.normal(out_shape) + 0.5  # a mean, so that the sums grow
  grad = _bias_grad(layer, x, cotangent)
  # What the layer can at best return: the float32 sum of the bfloat16-rounded cotangent.
  rounded = tf.cast(tf.cast(cotangent, tf.bfloat16), tf.float32)
  exact = tf.reduce_sum(tf.reshape(rounded, [-1, out_shape[-1]]), 0)
  assert grad.dtype == tf.float32
  np.testing.assert_allclose(grad.numpy(), exact.numpy(), rtol=1e-2,
                             atol=1e-2 * np.abs(exact).max())
  # Keras's own layer (tf.nn.bias_add) sums in bfloat16 on the CPU: far off at these sizes.
  stock = {
      'dense': keras.layers.Dense,
      'conv': keras.layers.Conv2D,
      'deconv': keras.layers.Conv2DTranspose
  }[name](*layer_args(layer))
  stock(x)
  stock_err = np.abs(_bias_grad(stock, x, cotangent) - exact).max() / np.abs(exact).max()
  ours_err = np.abs(grad - exact).max() / np.abs(exact).max()
  assert ours_err < 0.1 * stock_err or stock_err < 1e-2, (ours_err, stock_err)


def layer_args(layer):
  if isinstance(layer, keras.layers.Dense):
    return (layer.units,)
  return (layer.filters, layer.kernel_size, layer.strides)


def test_pointwise_transposed_conv_equals_keras():
  """The 1 x 1 input path (a matmul) returns Keras's transposed conv and its gradients."""
  x = tf.random.normal([32, 1, 1, 48])
  ours = networks.Conv2DTranspose(8, 5, 2, activation='relu')
  stock = keras.layers.Conv2DTranspose(8, 5, 2, activation='relu')
  ours(x), stock(x)
  stock.set_weights(ours.get_weights())
  assert [v.shape for v in ours.variables] == [v.shape for v in stock.variables]
  results = []
  for layer in (ours, stock):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x)
      loss = tf.reduce_sum(tf.sin(y))
    results.append([y] + tape.gradient(loss, [x] + layer.trainable_variables))
  assert results[0][0].shape == (32, 5, 5, 8)
  for a, b in zip(*results):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_layers_keep_kerass_variables_and_activation():
  dense = networks.Dense(7, 'elu')
  y = dense(-10.0 * tf.ones([2, 3, 5]))
  assert y.shape == (2, 3, 7)
  assert [v.name.split('/')[-1] for v in dense.variables] == ['kernel:0', 'bias:0']
  assert float(tf.reduce_min(y)) >= -1.0  # elu applied after the bias
  no_bias = networks.Conv2D(4, 4, 2, use_bias=False)
  assert no_bias(tf.ones([1, 8, 8, 3])).shape == (1, 3, 3, 4)
  assert len(no_bias.variables) == 1


def test_bias_options_config_and_data_format_are_keras_own():
  """bias_initializer is used, get_config says what the layer computes, and a channels_first
  conv adds its bias on the channel axis (issue 35's small things)."""
  dense = networks.Dense(3, 'relu', bias_initializer='ones')
  dense(tf.zeros([1, 2]))
  np.testing.assert_array_equal(dense.bias.numpy(), np.ones(3))
  config = dense.get_config()
  assert config['use_bias'] is True and config['activation'] == 'relu'
  conv = networks.Conv2D(4, 1, data_format='channels_first', bias_initializer='ones')
  x = tf.zeros([1, 2, 5, 5])
  try:
    y = conv(x)
  except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
    pytest.skip('this CPU build has no channels_first convolution')
  assert y.shape == (1, 4, 5, 5)
  np.testing.assert_allclose(y.numpy(), np.ones([1, 4, 5, 5]))


def test_the_package_builds_biased_layers_from_networks():
  """docs/ARCHITECTURE.md: a Keras Dense/Conv layer appears only where it computes in float32."""
  root = pathlib.Path(networks.__file__).parent
  offenders = []
  for path in root.rglob('*.py'):
    for number, line in enumerate(path.read_text().splitlines(), 1):
      if re.search(r'keras\.layers\.(Dense|Conv2D|Conv2DTranspose)\(',
                   line) and ("dtype='float32'" not in line) and path.name != 'networks.py':
        offenders.append(f'{path.relative_to(root)}:{number}: {line.strip()}')
  assert not offenders, offenders
