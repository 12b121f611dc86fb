"""`bench.flops`: the dense FLOPs of a traced tf.function, loop bodies times their trip count
(the roofline figures, issue 16), on cases whose count is known by hand."""
import tensorflow as tf

from bench import flops

M, K, N, T = 6, 5, 4, 7


def v1_profiler_flops(fn, *args):
  """What tf.compat.v1.profiler's float_operation counts on fn's traced graph."""
  opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  opts['output'] = 'none'
  graph = fn.get_concrete_function(*args).graph
  return tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops


def test_a_loop_body_counts_times_its_trip_count():
  w = tf.ones([K, N])

  @tf.function
  def scan(xs):  # T steps of (M x K) @ (K x N)
    return tf.scan(lambda acc, x: acc + tf.matmul(x, w), xs, tf.zeros([M, N]))

  xs = tf.ones([T, M, K])
  assert flops.count(scan, xs).flops == 2 * M * N * K * T
  # TF's profiler sees only the graph's top level: the loop body counts zero, not once.
  assert v1_profiler_flops(scan, xs) < 2 * M * N * K


def test_the_gradient_loop_counts_too():
  w = tf.Variable(tf.ones([N, N]))

  @tf.function
  def update(xs):
    with tf.GradientTape() as tape:
      ys = tf.scan(lambda h, x: tf.matmul(h, w) + x, xs, tf.zeros([M, N]))
      loss = tf.reduce_sum(ys)
    return tape.gradient(loss, w)

  count = flops.count(update, tf.ones([T, M, N]))
  # Forward: one matmul per step; backward: the gradients to h and to w per step.
  assert count.flops == 3 * 2 * M * N * N * T
  assert {g.times for g in count.gemms} == {T} and not count.unknown


def test_matmul_and_convolution_agree_with_the_v1_profiler_without_loops():
  @tf.function
  def dense(x, w, image, kernel):
    return tf.matmul(x, w, transpose_a=True), tf.nn.conv2d(image, kernel, 1, 'SAME')

  args = (tf.ones([K, M]), tf.ones([K, N]), tf.ones([2, 8, 8, 3]), tf.ones([3, 3, 3, 4]))
  expected = 2 * M * N * K + 2 * (2 * 8 * 8 * 4) * (3 * 3 * 3)
  assert flops.count(dense, *args).flops == expected == v1_profiler_flops(dense, *args)


def test_conv_gradients_and_dead_ops():
  kernel = tf.Variable(tf.ones([4, 4, 3, 8]))

  @tf.function
  def grads(image):
    with tf.GradientTape() as tape:
      y = tf.nn.conv2d(image, kernel, 2, 'VALID')  # 31 x 31 outputs
      tf.matmul(tf.ones([64, 64]), tf.ones([64, 64]))  # nothing uses it: never runs
    return tape.gradient(y, kernel)

  count = flops.count(grads, tf.ones([2, 64, 64, 3]))
  # Only the filter gradient runs: the conv's output and its input gradient are unused.
  assert [g.type for g in count.gemms] == ['Conv2DBackpropFilter']
  assert count.flops == 2 * (2 * 31 * 31 * 8) * (4 * 4 * 3)


def test_a_branch_counts_its_larger_side_and_dtypes_are_split():
  @tf.function
  def branch(x, big):
    return tf.cond(big, lambda: tf.matmul(x, x), lambda: x) + tf.cast(
        tf.matmul(tf.cast(x, tf.bfloat16), tf.cast(x, tf.bfloat16)), tf.float32)

  count = flops.count(branch, tf.ones([N, N]), tf.constant(True))
  assert count.by_dtype() == {'float32': 2 * N**3, 'bfloat16': 2 * N**3}
  assert count.median_width() == N


def test_unknown_shapes_are_listed_not_guessed():
  @tf.function(input_signature=[tf.TensorSpec([None, K])])
  def ragged(x):
    return tf.matmul(x, tf.ones([K, N]))

  count = flops.count(ragged)
  assert count.flops == 0 and len(count.unknown) == 1
