"""`make bench` (`python -m bench`): the speed and memory figures of docs/performance.md.

    python -m bench [--only FIGURE[,FIGURE]] [--repeats N] [--smoke] [--out DIR]
                    [--update_batch B] [--update_length T] [--timeout S]

Figures (names for --only): env (env ms per agent step vs a bare render step, each task),
update (Agent.train per method vs Dreamer's), precision (default precision / XLA vs
float32), worker (worker-process overhead), replay (RAM per step; sampling headroom),
export (SavedModel and TFLite policy latency vs the weight floor), train (end-to-end env
steps/s and where each window's wall time goes), roofline (the update's FLOP rate vs the
machine's dense matmul peak, whole and per part), collect (the training policy's ms per
agent step with and without MPC vs the env's), threads (small.gin's thread pools vs TF's
default, Agent.train at small.gin sizes, processes alternating), order (upstream's update
order, `Agent.model_step_first = False`, vs the default, the same way), projection (the wall
time of a whole 100k-step `mummi small` / `dreamer small` run from a short real run's window,
evaluation and prefill costs). Writes
DIR/results.json and DIR/results.md; with --only, figures of an earlier results.json in
DIR that were not rerun are kept. Each figure is the median of --repeats (>= 5; smoke: 2)
repeats with min and max, its baseline measured in the same run.

The main process imports TensorFlow; env figures run in a TF-free subprocess
(`bench.env_probe`), update figures in a fresh process per configuration
(`bench.update_probe`, `bench.roofline_probe`, `bench.policy_probe`), since the
mixed-precision policy is global.
"""
import argparse
import json
import pathlib
import shlex
import sys
import time

from bench import figures_env
from bench import figures_model
from bench import report

FIGURES = ('env', 'update', 'precision', 'worker', 'replay', 'export', 'train', 'roofline',
           'collect', 'threads', 'order', 'projection')
HERE = pathlib.Path(__file__).resolve().parent


def sizes(smoke, args):
  """Per-figure sizes of the full run or of the tiny smoke run."""
  if smoke:
    return {
        'env_tasks': ('walker_stand',),
        'env_steps': 5,
        'update': {
            'batch': 4,
            'length': 8,
            'warmup': 1,
            'tiny': True
        },
        'methods_smoke': True,
        'replay_capacity': 2,
        'replay_length': 51,
        'sample_batch': 4,
        'sample_length': 8,
        'sample_seconds': 0.2,
        'export_calls': 3,
        'quick': {
            'prefill': 100,
            'window': 100,
            'updates': 1
        },
        'paper': None,
        'collect': {
            'tiny': True,
            'batch': 1,
            'calls': 3,
            'env_steps': 5
        }
    }
  # prefill >= one episode (time_limit 1000 env steps): replay samples whole episodes only.
  return {
      'env_tasks': figures_env.DMC_TASKS + ('table_wiping',),
      'env_steps': args.env_steps,
      'update': {
          'batch': args.update_batch,
          'length': args.update_length,
          'warmup': 2,
          'tiny': False
      },
      'methods_smoke': False,
      'replay_capacity': 8,
      'replay_length': 501,
      'sample_batch': 50,
      'sample_length': 50,
      'sample_seconds': 2.0,
      'export_calls': 20,
      'quick': {
          'prefill': 1000,
          'window': 1000,
          'updates': 20
      },
      'paper': {
          'prefill': 1000,
          'window': 250,
          'updates': 1
      },
      'collect': {
          'tiny': False,
          'batch': 1,
          'calls': 50,
          'env_steps': args.env_steps
      }
  }


def parse_args(argv):
  parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__.splitlines()[0])
  parser.add_argument('--only', default=','.join(FIGURES),
                      help=f'comma-separated subset of: {", ".join(FIGURES)}')
  parser.add_argument('--repeats', type=int, default=None,
                      help='repeats per figure (default 5; smoke 2)')
  parser.add_argument('--smoke', action='store_true', help='tiny sizes (for the test)')
  parser.add_argument('--out', type=pathlib.Path, default=HERE, help='output folder')
  parser.add_argument('--update_batch', '--update-batch', type=int, default=50,
                      help='B of the update figures and of the paper-dims train run')
  parser.add_argument('--update_length', '--update-length', type=int, default=50,
                      help='T, likewise')
  parser.add_argument('--env_steps', '--env-steps', type=int, default=50,
                      help='agent steps per env repeat')
  parser.add_argument('--timeout', type=int, default=3600, help='seconds per subprocess')
  args = parser.parse_args(argv)
  names = [n.strip() for n in args.only.split(',') if n.strip()]
  bad = [n for n in names if n not in FIGURES]
  if bad or not names:
    parser.error(f'--only: unknown figure(s) {bad}; valid: {", ".join(FIGURES)}')
  minimum = 2 if args.smoke else 5
  if args.repeats is None:
    args.repeats = minimum
  if args.repeats < minimum:
    parser.error(f'--repeats must be >= {minimum}{" in smoke mode" if args.smoke else ""}')
  if min(args.update_batch, args.update_length, args.env_steps) < 1:
    parser.error('--update_batch, --update_length and --env_steps must be >= 1')
  args.names = names
  return args


def log(message, start):
  print(f'[bench {time.perf_counter() - start:7.1f} s] {message}', file=sys.stderr, flush=True)


def consumed_rate(results, out):
  """Sequences/s the train step consumes (B / update time of float32 MuMMI), and from
  where; None when no update figure exists in this run or in `out`'s results.json."""
  entry = results.get('update/mummi')
  source = 'this run'
  if entry is None:
    try:
      entry = json.loads((out / 'results.json').read_text())['figures']['update/mummi']
      source = f'{out / "results.json"} (an earlier run)'
    except (OSError, KeyError, ValueError):
      return None, 'no update/mummi figure measured (run with --only update,replay)'
  if not entry.get('value'):
    return None, 'update/mummi was not measured'
  batch = entry.get('batch', 50)
  return batch / entry['value'], (
      f'what the train step consumes: B={batch} sequences per update/mummi update '
      f'({entry["value"]:.3g} s, {source})')


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  size, repeats, names, start = sizes(args.smoke,
                                      args), args.repeats, args.names, time.perf_counter()
  info = report.machine()
  results = {}
  if 'env' in names or 'worker' in names:
    tasks = size['env_tasks'] if 'env' in names else figures_env.DMC_TASKS[:len(
        size['env_tasks'])] if args.smoke else figures_env.DMC_TASKS
    log(f'env probe: {", ".join(tasks)}', start)
    probe = figures_env.measure(tasks, size['env_steps'], repeats, args.timeout)
    if 'env' in names:
      results.update(figures_env.env_figures(probe))
    if 'worker' in names:
      results.update(figures_env.worker_figures(probe))
  if 'update' in names or 'precision' in names:
    opts = dict(size['update'], repeats=repeats)
    log(f'update probes (B={opts["batch"]}, T={opts["length"]})', start)
    model_names = [n for n in ('update', 'precision') if n in names]
    entries, _ = figures_model.run_all(model_names, opts, args.timeout, smoke=size['methods_smoke'])
    results.update(entries)
  if 'replay' in names:
    from bench import figures_replay
    log('replay', start)
    results['replay/ram_per_step'] = figures_replay.ram(
        size['replay_capacity'], size['replay_length'], repeats, args.timeout)
    rate, note = consumed_rate(results, args.out)
    results['replay/sampling'] = figures_replay.sampling(
        size['sample_batch'], size['sample_length'], size['sample_seconds'], repeats, rate, note)
  if 'export' in names:
    from bench import figures_export
    log('export', start)
    results.update(figures_export.figures(repeats, size['export_calls'], size['update']['tiny']))
  if 'train' in names:
    from bench import figures_train
    log('train (quick dims)', start)
    tiny = size['update']['tiny']
    results['train/quick'] = figures_train.run('quick', 'walker_stand',
                                               ['mummi', 'quick'] + (['tiny'] if tiny else []),
                                               size['quick'], repeats, args.timeout,
                                               figures_train_tiny(size) if tiny else [])
    if size['paper']:
      log('train (paper dims)', start)
      batch = [
          f'Trainer.batch_size = {args.update_batch}',
          f'Trainer.batch_length = {args.update_length}'
      ]
      results['train/paper'] = figures_train.run('paper', 'walker_stand', ['mummi'], size['paper'],
                                                 repeats, args.timeout, batch)
  if 'collect' in names:
    from bench import figures_collect
    log('collect (policy probes, env probe)', start)
    results.update(figures_collect.figures(dict(size['collect'], repeats=repeats), args.timeout))
  switches = [name for name in ('threads', 'order') if name in names]
  if switches:
    from bench import figures_switches
    log(f'{", ".join(switches)} (update probes, the two settings alternating)', start)
    update = dict(size['update'], batch=16, length=50) if not size['update']['tiny'] else dict(
        size['update'])
    results.update(
        figures_switches.figures(switches, dict(update, repeats=repeats), args.timeout,
                                 size['methods_smoke']))
  if 'projection' in names:
    from bench import figures_projection
    log('projection (short `<method> small` runs)', start)
    tiny = size['update']['tiny']
    opts = dict(repeats=repeats, tiny=tiny, extra=projection_tiny(size) if tiny else ())
    results.update(figures_projection.figures(opts, args.timeout, size['methods_smoke']))
  if 'roofline' in names:
    from bench import figures_roofline
    log(f'roofline probes (B={size["update"]["batch"]}, T={size["update"]["length"]})', start)
    results.update(figures_roofline.figures(dict(size['update'], repeats=repeats), args.timeout))
  for entry in results.values():
    entry['date'] = info['date']
  merged = dict(results)
  previous = args.out / 'results.json'
  if set(names) != set(FIGURES) and previous.exists():
    try:
      old = json.loads(previous.read_text())['figures']
      merged = {**{k: v for k, v in old.items() if k not in results}, **results}
    except (OSError, KeyError, ValueError):
      pass
    group = lambda key: FIGURES.index(key.split('/')[0]) if key.split('/')[0] in FIGURES else 99
    merged = dict(sorted(merged.items(), key=lambda kv: group(kv[0])))  # stable in a group
  command = 'python -m bench ' + shlex.join(argv if argv is not None else sys.argv[1:])
  options = {
      'only': names,
      'repeats': repeats,
      'smoke': args.smoke,
      'update_batch': args.update_batch,
      'update_length': args.update_length,
      'env_steps': args.env_steps,
      'seconds': round(time.perf_counter() - start, 1)
  }
  paths = report.write(args.out, merged, info, command.strip(), options)
  log(f'wrote {paths[0]} and {paths[1]}', start)
  print(report.markdown(results, info, command.strip()))
  return 0


def figures_train_tiny(size):
  """Extra bindings of the smoke train run (after gin/tiny.gin): the tiny batch."""
  return [
      f'Trainer.batch_size = {size["update"]["batch"]}',
      f'Trainer.batch_length = {size["update"]["length"]}', 'mummi_tf.envs.make.time_limit = 100'
  ]  # episodes of 50 agent steps: prefill ends one


def projection_tiny(size):
  """Extra bindings of the smoke projection (after gin/tiny.gin): the smoke train run's, a
  window of 100 env steps with 2 updates, one evaluation episode per level."""
  return figures_train_tiny(size) + [
      'Trainer.train_every = 100', 'Trainer.train_steps = 2', 'Trainer.eval_episodes = 1',
      'Evaluator.parallel = 1'
  ]


if __name__ == '__main__':
  sys.exit(main())
