"""Times `Agent.train` (world model + actor + value update), run as `python -m bench.update_probe`.

One configuration per fresh process: the Keras mixed-precision policy is global and must be
set before the model is built, so each (method, precision, jit) gets its own interpreter.
Inputs are random arrays of the Natural MuJoCo specs (rgb (64,64,3) uint8, depth (64,64,1)
uint8, touch (2,) float32, their flags, action (6,)); sizes are the code's defaults, the
paper's (h 200, s^c 30, s^f 1024), unless `--tiny`.

    python -m bench.update_probe --method mummi --precision float32 [--jit] \
        --batch 50 --length 50 --warmup 1 --repeats 5

Prints `RESULT {"first_s": ..., "times": [...], "params": ...}`: the first call (tracing,
excluded from `times`), then `repeats` timed calls after `warmup` untimed ones.
"""
import argparse
import time

import dm_env
import gin
import numpy as np

from bench import runner
from mummi_tf import gin_files

GIN_DIR = gin_files.GIN_DIR
ACTION_SIZE = 6
IMAGES = {'rgb': (64, 64, 3), 'depth': (64, 64, 1)}
VECTORS = {'touch': (2,)}


def obs_spec():
  """The Natural MuJoCo observation spec (docs/ARCHITECTURE.md) without `state`."""
  spec = {}
  for name, shape in IMAGES.items():
    spec[name] = dm_env.specs.Array(shape, np.uint8, name)
  for name, shape in VECTORS.items():
    spec[name] = dm_env.specs.Array(shape, np.float32, name)
  for name in list(spec):
    spec[f'{name}_flag'] = dm_env.specs.Array((), np.float32, f'{name}_flag')
  return spec


def action_spec():
  return dm_env.specs.BoundedArray((ACTION_SIZE,), np.float32, -1.0, 1.0)


def random_batch(batch, length, seed=0, spec=None, action_size=ACTION_SIZE, missing=0.375):
  """A training batch (B, T, ...) of random values of the right dtypes for ``spec`` (default
  the Natural MuJoCo spec), each sensor missing at a step with probability ``missing``."""
  rng = np.random.default_rng(seed)
  data = {}
  for name, s in (spec or obs_spec()).items():
    shape = (batch, length) + s.shape
    if s.dtype == np.uint8:
      data[name] = rng.integers(0, 256, shape, np.uint8)
    elif name.endswith('_flag'):
      data[name] = (rng.random(shape) >= missing).astype(np.float32)
    else:
      data[name] = rng.normal(size=shape).astype(np.float32)
  data['action'] = rng.uniform(-1, 1, (batch, length, action_size)).astype(np.float32)
  data['reward'] = rng.normal(size=(batch, length)).astype(np.float32)
  data['discount'] = np.ones((batch, length), np.float32)
  data['is_first'] = np.zeros((batch, length), bool)
  data['is_first'][:, 0] = True
  return data


def configure(method, tiny=False, bindings=(), gin_files=()):
  """gin/<method>.gin, then `gin_files` (names in gin/), gin/tiny.gin (if asked) and
  `bindings`."""
  from mummi_tf.model import agent  # noqa: F401  (registers the configurables)
  gin.clear_config()
  files = [f'{method}.gin'] + [f'{name}.gin' for name in gin_files] + (['tiny.gin'] if tiny else [])
  gin.parse_config_files_and_bindings([str(GIN_DIR / f) for f in files], list(bindings))


def build_agent(method, policy='float32', tiny=False, bindings=(), gin_files=()):
  """A fresh untrained Agent of `method` (then `gin_files`) under the Keras policy `policy`."""
  from mummi_tf.model import agent as agent_lib
  from mummi_tf.model import precision
  configure(method, tiny, bindings, gin_files)
  name = precision.set_policy(policy)
  return agent_lib.Agent(obs_spec(), action_spec()), name


def time_updates(method, policy, jit, batch, length, warmup, repeats, tiny=False, bindings=(),
                 threads=None, gin_files=()):
  """Times ``Agent.train``; ``threads``: (intra_op, inter_op) pools set first (None: TF's)."""
  import tensorflow as tf
  from mummi_tf.model import precision
  if threads:
    precision.set_threads(*threads)
  agent, policy_name = build_agent(method, policy, tiny, bindings, gin_files)
  train = agent.train
  if jit:
    train = tf.function(agent.train.python_function, jit_compile=True)
  data = {k: tf.constant(v) for k, v in random_batch(batch, length).items()}

  def call():
    start = time.perf_counter()
    metrics = train(data)
    float(metrics['model_loss'])  # waits for the step
    return time.perf_counter() - start

  first = call()
  for _ in range(max(0, warmup - 1)):
    call()
  times = [call() for _ in range(repeats)]
  params = sum(int(np.prod(v.shape)) for v in agent.trainable_variables)
  return {
      'method': method,
      'policy': policy_name,
      'jit': bool(jit),
      'batch': batch,
      'length': length,
      'first_s': first,
      'times': times,
      'params': params,
      'model_step_first': agent.model_step_first,
      'gin_files': list(gin_files),
      'threads': [
          tf.config.threading.get_intra_op_parallelism_threads(),
          tf.config.threading.get_inter_op_parallelism_threads()
      ]
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--method', required=True)
  parser.add_argument('--precision', default='float32')
  parser.add_argument('--jit', action='store_true')
  parser.add_argument('--batch', type=int, default=50, help='sequences')
  parser.add_argument('--length', type=int, default=50, help='steps per sequence')
  parser.add_argument('--warmup', type=int, default=1, help='untimed calls, the first included')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--tiny', action='store_true', help='tiny model sizes (smoke mode)')
  parser.add_argument('--gin_file', action='append', default=[],
                      help='a gin file of gin/ after the method\'s, e.g. small (repeatable)')
  parser.add_argument('--binding', action='append', default=[], help='a gin binding (repeatable)')
  parser.add_argument('--threads', default=None, help="INTRA,INTER: TF's thread pools")
  args = parser.parse_args(argv)
  threads = tuple(int(n) for n in args.threads.split(',')) if args.threads else None
  runner.emit(
      lambda: time_updates(args.method, args.precision, args.jit, args.batch, args.length, args.
                           warmup, args.repeats, args.tiny, args.binding, threads, args.gin_file),
      method=args.method)


if __name__ == '__main__':
  main()
