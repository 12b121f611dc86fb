"""Keras building blocks of the MSSM (paper appendix B/C, Figs. 7-18).

Public API (all ``keras.layers.Layer``; any leading batch dims are accepted)::

    Dense, Conv2D, Conv2DTranspose  Keras's, with the bias gradient summed in float32
    ConvEncoder(depth=32)          uint8 (..., 64, 64, C) -> (..., 32*depth) features
    MLPEncoder(units=128, out=1024) float (..., D) -> (..., out)
    ConvDecoder(channels, depth=32) (..., F) -> (..., 64, 64, channels) mean
    MLP(units, layers, out=None, act='elu')
    GaussianHead(size, min_std=0.1) (..., F) -> (mean, std), float32
    Expert(hidden, size, min_std=0.1) (..., F) -> (mean, std) of q(s^f | x^m)

Under a mixed policy the layers compute in bfloat16/float16; every head that
parameterises a distribution or a value computes its last layer in float32, and every
bias gets its gradient summed in float32 (``Dense``, ``Conv2D``, ``Conv2DTranspose``).
"""
import gin
import tensorflow as tf
import tf_keras as keras


class _SummedBias:
  """Adds the layer's bias as ``y + b``, whose gradient is a ``reduce_sum``.

  Keras adds it with ``tf.nn.bias_add``, whose gradient kernel (``BiasAddGrad``) on
  the CPU sums a bfloat16 gradient in bfloat16: 8-bit running sums swallow the
  addends, so over the rows of one update the bias gradient came out 8 % (800 x 400),
  68 % (6000 x 400, the imagined states) and 100 % (800 x 64 x 64 x 3, the decoder's
  output) off the float32 sum. ``reduce_sum`` accumulates in float32 (tested,
  tests/model/test_networks.py). The variables (``kernel``, then ``bias``) are Keras's.
  """
  def _own_bias(self, size, activation, use_bias):
    self._bias_size = size if use_bias else 0
    self._bias_act = keras.activations.get(activation)

  def build(self, input_shape):
    super().build(input_shape)
    if self._bias_size:  # Keras stored the layer's bias_initializer (default zeros)
      self.bias = self.add_weight('bias', shape=[self._bias_size],
                                  initializer=self.bias_initializer)

  def _finish(self, y):
    if self._bias_size:
      channels_first = getattr(self, 'data_format', None) == 'channels_first'
      y += tf.reshape(self.bias, [-1, 1, 1]) if channels_first else self.bias
    return self._bias_act(y)

  def get_config(self):
    """Keras's config with this layer's own bias and activation (what it computes)."""
    config = super().get_config()
    config.update(
        use_bias=bool(self._bias_size), activation=keras.activations.serialize(self._bias_act))
    return config

  def call(self, x):
    return self._finish(super().call(x))


class Dense(_SummedBias, keras.layers.Dense):
  """``keras.layers.Dense`` with the bias gradient summed in float32."""
  def __init__(self, units, activation=None, use_bias=True, **kw):
    super().__init__(units, use_bias=False, **kw)
    self._own_bias(units, activation, use_bias)


class Conv2D(_SummedBias, keras.layers.Conv2D):
  """``keras.layers.Conv2D`` with the bias gradient summed in float32."""
  def __init__(self, filters, kernel_size, strides=1, activation=None, use_bias=True, **kw):
    super().__init__(filters, kernel_size, strides, use_bias=False, **kw)
    self._own_bias(filters, activation, use_bias)


class Conv2DTranspose(_SummedBias, keras.layers.Conv2DTranspose):
  """``keras.layers.Conv2DTranspose`` with the bias gradient summed in float32.

  On a 1 x 1 input ('valid' padding) it is a matrix product, out[i, j, o] =
  sum_c x[c] K[i, j, o, c], and computed as one: the decoder's first layer, forward
  and backward over 800 images, 87 ms as oneDNN's transposed conv, 15 ms as a matmul.
  """
  def __init__(self, filters, kernel_size, strides=1, activation=None, use_bias=True, **kw):
    super().__init__(filters, kernel_size, strides, use_bias=False, **kw)
    self._own_bias(filters, activation, use_bias)

  def call(self, x):
    pointwise = (
        self.data_format == 'channels_last' and x.shape[1:3] == (1, 1) and
        self.padding == 'valid' and self.output_padding is None and self.dilation_rate == (1, 1))
    if not pointwise:
      return super().call(x)
    height, width, out, channels = self.kernel.shape
    kernel = tf.reshape(tf.transpose(self.kernel, [3, 0, 1, 2]), [channels, height * width * out])
    y = tf.matmul(tf.reshape(tf.cast(x, self.compute_dtype), [-1, channels]), kernel)
    return self._finish(tf.reshape(y, [-1, height, width, out]))


def _merge(x, keep):
  """Flattens all but the last ``keep`` dims; returns (flat, leading shape).

  Trailing dims known statically stay static in the graph: the TFLite converter
  legalises a ``Conv2D`` to a builtin only when its input channels are static.
  """
  shape = tf.shape(x)
  if x.shape.rank is None:
    lead = shape[:tf.rank(x) - keep]
    return tf.reshape(x, tf.concat([[-1], shape[tf.rank(x) - keep:]], 0)), lead
  start = x.shape.rank - keep
  tail = [shape[start + i] if d is None else d for i, d in enumerate(x.shape[start:].as_list())]
  return tf.reshape(x, [-1] + tail), shape[:start]


def _split(x, lead, keep):
  shape = tf.shape(x)
  return tf.reshape(x, tf.concat([lead, shape[tf.rank(x) - keep:]], 0))


class ConvEncoder(keras.layers.Layer):
  """4 conv, kernel 4, stride 2, channels depth*(1,2,4,8), ReLU; input x/255-0.5."""
  def __init__(self, depth=32, **kw):
    super().__init__(**kw)
    self._convs = [Conv2D(depth * k, 4, 2, activation='relu') for k in (1, 2, 4, 8)]

  def call(self, image):
    x, lead = _merge(image, 3)
    x = tf.cast(x, self.compute_dtype) / 255.0 - 0.5
    for conv in self._convs:
      x = conv(x)
    x = tf.reshape(x, [tf.shape(x)[0], -1])
    return _split(x, lead, 1)


def symlog(x):
  """sign(x) log(1 + |x|) (DreamerV3): compresses large magnitudes, ~x near 0."""
  return tf.sign(x) * tf.math.log1p(tf.abs(x))


class MLPEncoder(keras.layers.Layer):
  """3x Dense(units, ReLU) + Dense(out, ReLU) (prior code's tactile encoder)."""
  def __init__(self, units=128, out=1024, **kw):
    super().__init__(**kw)
    self._layers = [Dense(units, 'relu') for _ in range(3)]
    self._layers.append(Dense(out, 'relu'))

  def call(self, x):
    x = tf.cast(x, self.compute_dtype)
    for layer in self._layers:
      x = layer(x)
    return x


class ConvDecoder(keras.layers.Layer):
  """Dreamer's image decoder: Dense(32*depth) -> 4 transposed convs -> 64x64 mean."""
  def __init__(self, channels, depth=32, **kw):
    super().__init__(**kw)
    self._depth = depth
    self._dense = Dense(32 * depth)
    self._deconvs = [
        Conv2DTranspose(4 * depth, 5, 2, activation='relu'),
        Conv2DTranspose(2 * depth, 5, 2, activation='relu'),
        Conv2DTranspose(depth, 6, 2, activation='relu'),
        Conv2DTranspose(channels, 6, 2)
    ]

  def call(self, feat):
    x, lead = _merge(feat, 1)
    x = tf.reshape(self._dense(x), [-1, 1, 1, 32 * self._depth])
    for deconv in self._deconvs:
      x = deconv(x)
    return tf.cast(_split(x, lead, 3), tf.float32)


@gin.configurable
class MLP(keras.layers.Layer):
  """``layers`` x Dense(units, act), then an optional linear Dense(out).

  The output layer computes in float32 under a mixed policy: the heads this builds
  (reward, value, actor) read small differences (a reward of 0.3 beside a value of
  300; bfloat16 keeps 8 bits) that a low-precision output would round away.
  """
  def __init__(self, units, layers, out=None, act='elu', **kw):
    super().__init__(**kw)
    self._layers = [Dense(units, act) for _ in range(layers)]
    if out is not None:
      self._layers.append(keras.layers.Dense(out, dtype='float32'))

  def call(self, x):
    for layer in self._layers:
      x = layer(x)
    return tf.cast(x, tf.float32)


class GaussianHead(keras.layers.Layer):
  """Dense(2*size) -> mean, std = softplus(.) + min_std (float32)."""
  def __init__(self, size, min_std=0.1, **kw):
    super().__init__(**kw)
    self._dense = keras.layers.Dense(2 * size, dtype='float32')
    self._min_std = min_std

  def call(self, x):
    mean, std = tf.split(tf.cast(self._dense(x), tf.float32), 2, -1)
    return mean, tf.nn.softplus(std) + self._min_std


class Expert(keras.layers.Layer):
  """q(s^f | x^m): Dense(hidden, ReLU) -> GaussianHead (prior code's expert)."""
  def __init__(self, hidden, size, min_std=0.1, **kw):
    super().__init__(**kw)
    self._hidden = Dense(hidden, 'relu')
    self._head = GaussianHead(size, min_std)

  def call(self, x):
    return self._head(self._hidden(x))
