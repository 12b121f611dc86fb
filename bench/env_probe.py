"""The env figures' measurements, run as `python -m bench.env_probe` (never imports TF).

dm_control and robosuite render with Mesa, which a process that imported TensorFlow
breaks (docs/ARCHITECTURE.md), and dm_control crashes at exit in such a process; so the
bench's main process (which imports TF) runs this module as a subprocess and reads one
JSON line per task from its stdout.

    python -m bench.env_probe --steps 50 --repeats 5 [--no_shadows] walker_stand ... table_wiping

Natural MuJoCo tasks reuse `mummi_tf.envs.benchmark.measure` (bare dm_control render
step, our env in process, our env in a worker; repeats interleaved); Table Wiping reuses
`mummi_tf.envs.robosuite_wipe.benchmark` (physics / render / bookkeeping split).
"""
import argparse
import json
import sys


def natural_mujoco(task, steps, repeats, size, shadows=True):
  from mummi_tf.envs import benchmark
  result = benchmark.measure(task, shadows=shadows, steps=steps, repeats=repeats, size=size)
  times = {k: list(v) for k, v in result.items()}
  return {'task': task, **times, 'repeats': repeats, 'shadows': shadows}


def table_wiping(steps, repeats, size):
  from mummi_tf.envs import robosuite_wipe
  runs = [robosuite_wipe.benchmark(num_steps=steps, seed=i, size=size) for i in range(repeats)]
  return {'task': 'table_wiping', 'runs': runs, 'repeats': repeats}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('tasks', nargs='+')
  parser.add_argument('--steps', type=int, default=50, help='agent steps per repeat')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--size', type=int, default=64, help='image height = width, pixels')
  parser.add_argument('--no_shadows', action='store_true',
                      help='Natural MuJoCo without shadows (gin/small.gin, gin/quick.gin)')
  args = parser.parse_args(argv)
  assert 'tensorflow' not in sys.modules
  size = (args.size, args.size)
  for task in args.tasks:
    try:
      if task == 'table_wiping':
        result = table_wiping(args.steps, args.repeats, size)
      else:
        result = natural_mujoco(task, args.steps, args.repeats, size, not args.no_shadows)
    except Exception as e:  # noqa: BLE001 - reported per task, the others still run
      result = {'task': task, 'error': f'{type(e).__name__}: {e}'}
    print('RESULT ' + json.dumps(result), flush=True)
  assert 'tensorflow' not in sys.modules, 'the env probe imported TensorFlow'


if __name__ == '__main__':
  main()
