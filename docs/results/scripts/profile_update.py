"""Op time of one world-model and one actor-critic update, by op type and by name scope.

Run from the repository root: python docs/results/scripts/profile_update.py METHOD MODALITIES
B T [gin bindings...], e.g. `dreamer rgb 16 50 WorldModel.cnn_depth=16 ActorCritic.starts=400`.
Builds the agent as `time_update_parts.py` does (random inputs), times each part (median of 5),
then traces 3 calls of each with TF's profiler and sums the op events of its XPlane (ms per
update; both threads' events, so the sums exceed the wall time where ops overlap).
"""
import collections
import glob
import sys
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

sys.path.insert(0, '.')
from bench import update_probe as up  # noqa: E402

method, mods, B, T = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3]), int(sys.argv[4])
up.IMAGES = {k: v for k, v in {'rgb': (64, 64, 3), 'depth': (64, 64, 1)}.items() if k in mods}
up.VECTORS = {k: v for k, v in {'touch': (2,), 'state': (24,)}.items() if k in mods}
agent, _ = up.build_agent(method, 'auto', False, sys.argv[5:])
data = {
    k: tf.constant(v)
    for k, v in up.random_batch(B, T).items()
    if k in up.obs_spec() or k in ('action', 'reward', 'discount', 'is_first')
}
wm = tf.function(lambda d: agent.world_model.update(d))
post, _ = wm(data)
ac = tf.function(lambda p: agent.behavior.update(agent.world_model, p))
ac(post)


def run(f, x):
  tf.nest.map_structure(lambda y: y.numpy(), f(x))


def seconds(f, x, n=5):
  times = []
  for _ in range(n):
    timer = tf.timestamp()
    run(f, x)
    times.append(float(tf.timestamp() - timer))
  return float(np.median(times))


def op_times(f, x, calls=3):
  """(by op type, by the first three name-scope levels), ms per call."""
  logdir = tempfile.mkdtemp()
  tf.profiler.experimental.start(logdir)
  for _ in range(calls):
    run(f, x)
  tf.profiler.experimental.stop()
  space = xplane_pb2.XSpace()
  with open(glob.glob(f'{logdir}/**/*.xplane.pb', recursive=True)[0], 'rb') as file:
    space.ParseFromString(file.read())
  by_type, by_scope = collections.Counter(), collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if ':' not in name or name.startswith('ExecutorState'):
          continue  # TF op events are 'scope/name:Type'
        op, kind = name.rsplit(':', 1)
        ms = event.duration_ps / 1e9 / calls
        by_type[kind] += ms
        by_scope['/'.join(op.split('/')[:3])] += ms
  return by_type, by_scope


for label, f, x in (('world model', wm, data), ('actor-critic', ac, post)):
  print(f'== {label}: {seconds(f, x):.3f} s per update (median of 5)')
  for table in op_times(f, x):
    for key, ms in table.most_common(15):
      print(f'  {ms:8.1f} ms  {key}')
    print('  --')
