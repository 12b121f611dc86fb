#!/usr/bin/env python
"""Table I / Table II from trained logdirs: every checkpoint under every missing-data condition.

    mummi-eval --logdirs logdir/walker_stand/*/seed* --episodes 10 --out table

Each logdir's latest checkpoint is evaluated with its own saved gin configuration under every
evaluation condition of its task family (Natural MuJoCo: none / medium / high missing; Table
Wiping adds the robot-camera-only rows), ``--episodes`` episodes each (paper: 10 per seed, 3
seeds). Episodes of all seeds of a (task, method) are pooled into mean ± std, as in the paper.
Writes ``OUT.csv`` (one row per task × method × condition) and ``OUT.md`` (Table I layout:
rows task × condition, one column per method).
"""

import argparse
import collections
import csv
import json
import pathlib
import sys

import gin
import numpy as np


def evaluate_logdir(logdir, episodes):
  """``(task, method, {condition: [returns]})`` of one logdir's latest checkpoint."""
  from mummi_tf import envs
  from mummi_tf.run import trainer
  run = json.loads((logdir / 'run.json').read_text())
  envs.all_tasks()  # every suite registers its configurables before gin locks the config
  gin.clear_config()
  gin.parse_config_files_and_bindings([str(logdir / 'config.gin')], [])
  runner = trainer.Trainer(logdir=logdir, task=run['task'], seed=run['seed'], gin_files=run.get(
      'gin_files', ()))  # run.json is rewritten
  return run['task'], run['method'], runner.evaluate_only(episodes)


def tabulate(results):
  """``{(task, method, condition): [returns]}`` → CSV rows and a Table I markdown."""
  rows = [{
      'task': t,
      'method': m,
      'condition': c,
      'mean': np.mean(r),
      'std': np.std(r),
      'episodes': len(r)
  } for (t, m, c), r in sorted(results.items())]
  methods = sorted({m for _, m, _ in results})
  lines = [
      '| task | missing data | ' + ' | '.join(methods) + ' |', '|---|---|' + '---|' * len(methods)
  ]
  cells = collections.defaultdict(dict)
  for row in rows:
    cells[(row['task'],
           row['condition'])][row['method']] = (f"{row['mean']:.1f} ± {row['std']:.1f}")
  for (task, condition), by_method in cells.items():
    lines.append(f'| {task} | {condition} | ' + ' | '.join(by_method.get(m, '—') for m in methods) +
                 ' |')
  return rows, '\n'.join(lines) + '\n'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--logdirs', nargs='+', required=True, type=pathlib.Path)
  parser.add_argument('--episodes', type=int, default=10, help='per condition and logdir')
  parser.add_argument('--out', type=pathlib.Path, default=pathlib.Path('table'))
  args = parser.parse_args(argv)
  absent = [str(d) for d in args.logdirs if not d.is_dir()]
  if absent:
    print(f'error: no such logdir: {", ".join(absent)}', file=sys.stderr)
    return 2
  missing = [str(d) for d in args.logdirs if not (d / 'run.json').exists()]
  if missing:
    print(f'error: not a training logdir (no run.json): {", ".join(missing)}', file=sys.stderr)
    return 2
  results = collections.defaultdict(list)
  from mummi_tf.cli import import_tensorflow_quietly
  from mummi_tf.errors import UsageError
  import_tensorflow_quietly()
  for logdir in args.logdirs:
    try:
      task, method, returns = evaluate_logdir(logdir, args.episodes)
    except UsageError as e:
      print(f'error: {e}', file=sys.stderr)
      return 2
    for condition, values in returns.items():
      results[(task, method, condition)].extend(values)
  rows, markdown = tabulate(results)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  with open(args.out.with_suffix('.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  args.out.with_suffix('.md').write_text(markdown)
  print(markdown)
  return 0


if __name__ == '__main__':
  sys.exit(main())
