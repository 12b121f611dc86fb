"""Op time of one world-model and one actor-critic update, by op type and by name scope.

Run from the repository root: python docs/results/scripts/profile_update.py METHOD MODALITIES
B T [gin bindings...], e.g. `dreamer rgb 16 50 WorldModel.cnn_depth=16 ActorCritic.starts=400`.
Builds the agent as `time_update_parts.py` does (random inputs), times each part (median of 5),
then traces 3 calls of each with TF's profiler and sums the op events of its XPlane (ms per
update; both threads' events, so the sums exceed the wall time where ops overlap).
"""
import collections
import glob
import pathlib
import sys
import tempfile

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import time_update_parts as parts  # noqa: E402


def op_times(f, x, calls=3):
  """(by op type, by the first three name-scope levels), ms per call."""
  logdir = tempfile.mkdtemp()
  tf.profiler.experimental.start(logdir)
  for _ in range(calls):
    parts.run(f, x)
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
        if kind == 'Run' or '__inference' in name:
          continue  # the whole function's events, not an op's
        ms = event.duration_ps / 1e9 / calls
        by_type[kind] += ms
        by_scope['/'.join(op.split('/')[:3])] += ms
  return by_type, by_scope


wm, data, ac, post, _ = parts.build(sys.argv[1:])
for label, f, x in (('world model', wm, data), ('actor-critic', ac, post)):
  print(f'== {label}: {parts.seconds(f, x, 5):.3f} s per update (median of 5)')
  for table in op_times(f, x):
    for key, ms in table.most_common(15):
      print(f'  {ms:8.1f} ms  {key}')
    print('  --')
