"""ELU and its gradient in the forms TF can run them, bfloat16 and float32, one thread: is
there a cheaper exact ELU gradient than TF's EluGrad kernel? (docs/results/2026-12-07-update-
speed/README.md)

    .venv/bin/python docs/results/scripts/elu_forms.py
"""
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import tensorflow as tf  # noqa: E402

ROWS, UNITS, REPEATS = 12000, 400, 30


def median_ms(fn, *args):
  fn(*args)
  fn(*args)
  times = []
  for _ in range(REPEATS):
    start = time.perf_counter()
    fn(*args).numpy()
    times.append(time.perf_counter() - start)
  return sorted(times)[REPEATS // 2] * 1e3


def main():
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  x = tf.random.normal([ROWS, UNITS], seed=0)
  dy = tf.random.normal([ROWS, UNITS], seed=1)
  forms = {
      'Elu (forward)': lambda d, y, a: tf.nn.elu(a),
      'EluGrad': lambda d, y, a: tf.raw_ops.EluGrad(gradients=d, outputs=y),
      'dy * (min(y, 0) + 1)': lambda d, y, a: d * (tf.minimum(y, 0) + 1),
      'where(y > 0, dy, dy * (y + 1))': lambda d, y, a: tf.where(y > 0, d, d * (y + 1)),
  }
  for dtype in (tf.bfloat16, tf.float32):
    a, d = tf.cast(x, dtype), tf.cast(dy, dtype)
    y = tf.nn.elu(a)
    if dtype == tf.bfloat16:  # the forward in float32 between two casts
      forms['cast, Elu in float32, cast'] = (
          lambda d, y, a: tf.cast(tf.nn.elu(tf.cast(a, tf.float32)), tf.bfloat16))
    else:
      forms.pop('cast, Elu in float32, cast', None)
    for name, form in forms.items():
      print(f'{dtype.name:9s} {name:32s} {median_ms(tf.function(form), d, y, a):6.2f} ms')


if __name__ == '__main__':
  main()
