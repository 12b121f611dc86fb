"""Our update against the upstream code's, on one box, interleaved (issue 33, item 4):
Dreamer against danijar/dreamer, MuMMI against clear-nus/MuMMI (the authors' code, its fork).

    bash docs/results/scripts/patch_upstream.sh CHECKOUT
    python docs/results/scripts/upstream_update.py compare {dreamer,mummi} CHECKOUT
        [--rounds 5] [--batch 16] [--length 50] [--threads INTRA,INTER]

Each sample is a fresh process (`probe {dreamer,mummi} {ours,upstream} CHECKOUT`): the Keras
precision policy and TF's thread pools are global, and upstream needs tf-keras
(TF_USE_LEGACY_KERAS=1). Both sides run float32 on a random batch B x T at upstream's sizes
(h 200, s 30, 400 units, cnn depth 32, 15-step imagination from every posterior; MuMMI's s^f
1024). Dreamer: RGB 64 x 64 only; ours with `gin/dreamer_upstream.gin` (upstream's learner and
update order). MuMMI: RGB, depth and touch, each missing 37.5 % of steps; ours with
`gin/mummi.gin` and the authors' learner bound (`UPSTREAM_MUMMI`: their flag/std fusion, no
slow target, no entropy bonus, clip 30, Adam eps 1e-7, their update order). A probe times 5
updates after 2 untimed ones and prints one JSON line; `compare` alternates the two sides,
`--rounds` times, and prints each side's median of medians, its min, the parameter counts and
the ratio. Upstream as it is in other respects: its Adam sits in a dynamic LossScaleOptimizer
even in float32, its metrics (tf.metrics.Mean) update every step, and the authors' MuMMI runs
its image and depth decoders forward in every update though no loss uses them.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[3]
ACTION_SIZE = 6


def timed(call, sync, warmup=2, repeats=5):
  for _ in range(warmup):
    call()
    sync()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    sync()
    times.append(time.perf_counter() - start)
  return times


UPSTREAM_MUMMI = ("WorldModel.fusion = 'reference'", 'ActorCritic.slow_target_every = 0',
                  'ActorCritic.entropy = 0.0', 'ActorCritic.starts = 0', 'WorldModel.clip = 30.0',
                  'ActorCritic.clip = 30.0', 'WorldModel.eps = 1e-7', 'ActorCritic.eps = 1e-7',
                  'Agent.model_step_first = False')
MISSING = 0.375


def probe_ours(code, batch, length):
  sys.path.insert(0, str(ROOT))
  import dm_env
  import tensorflow as tf
  from bench import update_probe as up
  from mummi_tf.model import agent as agent_lib
  from mummi_tf.model import precision
  if code == 'dreamer':
    up.configure('dreamer', gin_files=['dreamer_upstream'])
    spec = {
        'rgb': dm_env.specs.Array((64, 64, 3), np.uint8, 'rgb'),
        'rgb_flag': dm_env.specs.Array((), np.float32, 'rgb_flag')
    }
    missing = 0.0
  else:
    up.configure('mummi', bindings=UPSTREAM_MUMMI)
    spec, missing = up.obs_spec(), MISSING
  precision.set_policy('float32')
  agent = agent_lib.Agent(spec, up.action_spec())
  data = {
      k: tf.constant(v)
      for k, v in up.random_batch(batch, length, spec=spec, missing=missing).items()
  }
  out = {}
  times = timed(lambda: out.update(agent.train(data)), lambda: float(out['model_loss']))
  nets = (agent.world_model.model_variables, agent.behavior.actor.trainable_variables,
          agent.behavior.value.trainable_variables)
  return times, sum(int(np.prod(v.shape)) for vs in nets for v in vs)


def episode(code, rng, length=501):
  """A random episode as the upstream collection stores it (501 steps of a 1000-step one)."""
  data = {
      'image': rng.integers(0, 256, (length, 64, 64, 3), np.uint8),
      'action': rng.uniform(-1, 1, (length, ACTION_SIZE)).astype(np.float32),
      'reward': rng.normal(size=length).astype(np.float32)
  }
  if code == 'mummi':  # the authors' MissingMultimodal wrapper: a (1,) flag per modality
    data['depth'] = rng.uniform(0, 200, (length, 64, 64, 1)).astype(np.float32)
    data['touch'] = rng.uniform(0, 200, (length, 2)).astype(np.float32)
    for m in ('image', 'depth', 'touch'):
      data[f'{m}_flag'] = (rng.random((length, 1)) >= MISSING).astype(np.float32)
  return data


def probe_upstream(code, checkout, batch, length):
  os.environ['TF_USE_LEGACY_KERAS'] = '1'
  # Imported, unused by the update (and the authors' wrappers.py does not parse).
  for name in ('gym', 'wrappers'):
    sys.modules.setdefault(name, types.ModuleType(name))
  sys.path.insert(0, str(checkout))
  import tensorflow as tf
  if code == 'dreamer':
    import dreamer as module
    config, make = module.define_config(), module.Dreamer
  else:
    import mummi as module
    config, make = module.define_config(), module.CMDreamer
  config.precision, config.batch_size, config.batch_length = 32, batch, length
  rng = np.random.default_rng(0)
  with tempfile.TemporaryDirectory() as tmp:
    config.logdir = pathlib.Path(tmp)
    datadir = pathlib.Path(tmp) / 'episodes'
    datadir.mkdir()
    for i in range(3):
      np.savez(datadir / f'episode-{i}.npz', **episode(code, rng))
    writer = tf.summary.create_file_writer(tmp)
    writer.set_as_default()
    tf.summary.experimental.set_step(0)
    agent = make(config, datadir, types.SimpleNamespace(shape=(ACTION_SIZE,)), writer)
    data = next(agent._dataset)
    weight = agent._dynamics.variables[0]
    times = timed(lambda: agent.train(data), lambda: float(tf.reduce_sum(weight)))
    # The optimised variables (the authors' MuMMI also builds decoders it never trains).
    nets = [agent._model_opt, agent._actor_opt, agent._value_opt]
    return times, sum(int(np.prod(v.shape)) for opt in nets for v in opt._variables)


def probe(args):
  if args.threads:
    import tensorflow as tf
    intra, inter = map(int, args.threads.split(','))
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
  if args.side == 'ours':
    times, params = probe_ours(args.code, args.batch, args.length)
  else:
    times, params = probe_upstream(args.code, args.checkout, args.batch, args.length)
  print('RESULT ' + json.dumps({'side': args.side, 'times': times, 'params': params}))


def compare(args):
  samples = {'ours': [], 'upstream': []}
  params = {}
  for _ in range(args.rounds):
    for side in samples:
      cmd = [
          sys.executable, __file__, 'probe', args.code, side,
          str(args.checkout), '--batch',
          str(args.batch), '--length',
          str(args.length)
      ] + (['--threads', args.threads] if args.threads else [])
      out = subprocess.run(cmd, capture_output=True, text=True, check=False)
      line = [x for x in out.stdout.splitlines() if x.startswith('RESULT ')]
      if not line:
        sys.exit(f'{side} probe failed:\n{out.stderr[-3000:]}')
      result = json.loads(line[-1][7:])
      samples[side].append(float(np.median(result['times'])))
      params[side] = result['params']
      print(side, round(samples[side][-1], 4), flush=True)
  summary = {
      side: {
          'median_s': round(float(np.median(v)), 4),
          'min_s': round(float(np.min(v)), 4),
          'params': params[side],
          'samples': [round(x, 4) for x in v]
      } for side, v in samples.items()
  }
  summary['ours_over_upstream'] = round(
      summary['ours']['median_s'] / summary['upstream']['median_s'], 3)
  summary.update(code=args.code, batch=args.batch, length=args.length, threads=args.threads or
                 'TF default')
  print(json.dumps(summary))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  modes = parser.add_subparsers(dest='mode', required=True)
  both = modes.add_parser('compare', help='alternate fresh probes of the two sides')
  one = modes.add_parser('probe', help='one sample of one side (a fresh process)')
  for sub in (both, one):
    sub.add_argument('code', choices=('dreamer', 'mummi'))
  one.add_argument('side', choices=('ours', 'upstream'))
  for sub in (both, one):
    sub.add_argument('checkout', type=pathlib.Path, nargs='?' if sub is one else None,
                     help='the patched upstream checkout')
    sub.add_argument('--batch', type=int, default=16)
    sub.add_argument('--length', type=int, default=50)
    sub.add_argument('--threads', default=None, help="INTRA,INTER: TF's thread pools")
  both.add_argument('--rounds', type=int, default=5)
  args = parser.parse_args()
  (compare if args.mode == 'compare' else probe)(args)


if __name__ == '__main__':
  main()
