"""Two agents built with one seed, three updates on one fixed batch: are the losses equal?

Run from the repository root: python docs/results/scripts/determinism.py float32|mixed_bfloat16
(ONCE=1: one agent per process, to compare two processes; ONE_THREAD=1 / INTER1=1: threads).
"""
import sys, os

sys.path.insert(0, '.')
import tensorflow as tf, tf_keras as keras

tf.config.experimental.enable_op_determinism()
if os.environ.get('ONE_THREAD'):
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
if os.environ.get('INTER1'):
  tf.config.threading.set_inter_op_parallelism_threads(1)
from bench import update_probe as up

prec = sys.argv[1]


def run():
  keras.utils.set_random_seed(0)
  agent, _ = up.build_agent('mummi', prec, False,
                            ['WorldModel.fused=256', 'WorldModel.cnn_depth=16'])
  data = {k: tf.constant(v) for k, v in up.random_batch(16, 50).items()}
  out = []
  for _ in range(3):
    m = agent.train(data)
    out.append((float(m['model_loss']), float(m['actor_loss']), float(m['value_loss'])))
  w = sum(float(tf.reduce_sum(v)) for v in agent.trainable_variables)
  return out, w


a = run()
b = a if os.environ.get("ONCE") else run()
print(prec, os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'same' if a == b else 'DIFF', a, b)
