#!/usr/bin/env python
"""Learning curves in the style of the paper's Fig. 5, ours beside upstream Dreamer's.

Reads runs from our logdirs (``metrics.jsonl``, see ``mummi_tf/run/logger.py``) and from
upstream Dreamer logdirs (their ``metrics.jsonl`` lines ``{"step": ..., "test/return": ...}``
and their TensorBoard event files, e.g. tag ``sim/test/return``), smooths every run with
TensorBoard's debiased exponential moving average (weight 0.9), averages the seeds of one
(task, method) on a common step grid (line = mean, band = one standard deviation) and draws
one panel per task::

    mummi-plot --logdirs runs/walker_walk/mummi/0 runs/walker_walk/mummi/1 \
        --upstream dreamer_runs --out fig.png --metric test/return --reference dreamerv3 drqv2

Every entry of ``--logdirs`` / ``--upstream`` is a run directory or a folder searched
recursively for runs (directories holding ``metrics.jsonl`` or ``events.out.tfevents.*``).
``LABEL=PATH`` names the method explicitly. Otherwise our runs say what they are in their
``run.json`` (task, method and the gin files beyond the method's, e.g. ``dreamer (plain
small)``, seed); only runs without one (upstream's) are read from their path with
``--layout`` (default ``task/method/seed``: the run directory's last three components).
``--task`` forces one task for every run. Task names lose a ``dmc_`` prefix, so upstream
``dmc_walker_walk`` and our ``walker_walk`` share a panel. Reading event files needs only the
``tensorboard`` package (no TensorFlow import).
"""
import argparse
import collections
import json
import math
import pathlib
import sys

import numpy as np

# Names under which a metric appears in the supported log formats.
_ALIASES = {
    'test/return': ('test/return', 'sim/test/return', 'scalars/test/return', 'eval/return',
                    'eval_return', 'scalars/eval_return', 'eval_episode/score'),
    'train/return': ('train/return', 'sim/train/return', 'scalars/train/return', 'train_return',
                     'scalars/train_return', 'episode/score'),
}

Run = collections.namedtuple('Run', 'path task method seed source steps values')

# Published DMC-vision curves per seed (DreamerV3's repository, MIT; source, commit, units
# and the conversion are recorded in the file itself).
REFERENCE_FILE = (
    pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'reference' / 'dmc_vision_curves.json')
REFERENCE_LABELS = {'dreamerv3': 'DreamerV3 (published)', 'drqv2': 'DrQ-v2 (published)'}


def metric_names(metric):
  """All tags that mean ``metric`` (itself first)."""
  names = [metric] + [a for a in _ALIASES.get(metric, ()) if a != metric]
  return tuple(names)


def read_rows(path):
  """The JSON rows of a ``metrics.jsonl`` file, in file order; bad lines (a line cut short by a
  crash) and rows without a step are skipped."""
  rows = []
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if isinstance(row, dict) and 'step' in row:
        rows.append(row)
  return rows


def read_jsonl(path, metric):
  """(steps, values) of ``metric`` from a ``metrics.jsonl`` file (the last value per step)."""
  names = metric_names(metric)
  points = {}
  for row in read_rows(path):
    for name in names:
      value = row.get(name)
      if isinstance(value, (int, float)) and math.isfinite(value):
        points[int(row['step'])] = float(value)
        break
  steps = np.array(sorted(points), np.int64)
  return steps, np.array([points[s] for s in steps], np.float64)


def read_events(paths, metric):
  """(steps, values) of ``metric`` from TensorBoard event files (TF1 simple values or TF2
  tensor scalars), via tensorboard's ``EventAccumulator``."""
  from tensorboard.backend.event_processing import event_accumulator
  from tensorboard.util import tensor_util
  names = metric_names(metric)
  points = {}
  for path in paths:
    acc = event_accumulator.EventAccumulator(
        str(path), size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.TENSORS: 0
        })
    acc.Reload()
    tags = acc.Tags()
    for name in names:
      if name in tags.get('scalars', ()):
        for ev in acc.Scalars(name):
          points[int(ev.step)] = float(ev.value)
        break
      if name in tags.get('tensors', ()):
        for ev in acc.Tensors(name):
          value = np.asarray(tensor_util.make_ndarray(ev.tensor_proto))
          if value.size == 1 and np.issubdtype(value.dtype, np.number):
            points[int(ev.step)] = float(value.reshape(()))
        break
  steps = np.array(sorted(k for k in points if math.isfinite(points[k])), np.int64)
  return steps, np.array([points[s] for s in steps], np.float64)


def find_runs(root):
  """Run directories at or under ``root`` (holding metrics.jsonl or an event file)."""
  root = pathlib.Path(root)
  if not root.exists():
    raise ValueError(f'Logdir {root} does not exist; give run directories or folders of runs.')
  candidates = [root] + sorted(p for p in root.rglob('*') if p.is_dir())
  runs = []
  for d in candidates:
    if (d / 'metrics.jsonl').is_file() or any(d.glob('events.out.tfevents.*')):
      runs.append(d)
  return runs


def parse_layout(layout):
  parts = layout.strip('/').split('/')
  valid = {'task', 'method', 'seed', '*'}
  if not parts or any(p not in valid for p in parts):
    raise ValueError(f'--layout must be "/"-separated components from task, method, seed, *; '
                     f'got {layout!r}.')
  return parts


def normalise_task(task):
  return task[4:] if task.startswith('dmc_') else task


def load_runs(entries, metric, source, layout, task=None):
  """Runs (with their curves) from ``entries`` (``PATH`` or ``LABEL=PATH``)."""
  parts = parse_layout(layout)
  runs = []
  for entry in entries:
    label, _, path = entry.partition('=') if '=' in entry else ('', '', entry)
    for run_dir in find_runs(path):
      names = run_dir.resolve().parts[-len(parts):]
      info = dict(zip(parts, names))
      if (run_dir / 'metrics.jsonl').is_file():
        steps, values = read_jsonl(run_dir / 'metrics.jsonl', metric)
      else:
        steps, values = np.zeros(0, np.int64), np.zeros(0)
      if not len(steps):  # upstream runs that only kept TensorBoard events
        events = sorted(run_dir.glob('events.out.tfevents.*'))
        if events:
          steps, values = read_events(events, metric)
      if not len(steps):
        print(f'plot: no {metric!r} in {run_dir}; skipped.', file=sys.stderr)
        continue
      info.update(read_run_json(run_dir))
      method = label or info.get('method') or source
      if source == 'upstream' and not label:
        method = f'{method} (upstream)'
      runs.append(
          Run(
              str(run_dir), normalise_task(task or info.get('task', 'task')), method,
              str(info.get('seed', '0')), source, steps, values))
  return runs


def read_run_json(run_dir):
  """{'task', 'method', 'seed'} from our run's ``run.json`` ({} without one). The method
  label names the gin files beyond the method's own: ``dreamer (plain small)``."""
  path = pathlib.Path(run_dir) / 'run.json'
  try:
    run = json.loads(path.read_text())
  except (OSError, ValueError):
    return {}
  info = {k: run[k] for k in ('task', 'method', 'seed') if k in run}
  extra = [name for name in run.get('gin_files', []) if name != run.get('method')]
  if 'method' in info and extra:
    info['method'] = f"{info['method']} ({' '.join(extra)})"
  return info


def load_reference(names, tasks, max_step, path=REFERENCE_FILE):
  """Runs of the published curves ``names`` for ``tasks``, up to ``max_step`` env steps."""
  data = json.loads(pathlib.Path(path).read_text())
  runs = []
  for name in names:
    if name not in data['curves']:
      raise ValueError(f'unknown --reference {name!r}; valid: {", ".join(sorted(data["curves"]))}')
    for task in tasks:
      for curve in data['curves'][name].get(task, []):
        steps = np.asarray(curve['steps'], np.int64)
        keep = steps <= max_step
        if keep.sum() >= 2:
          runs.append(
              Run(f'{path}:{name}', task, REFERENCE_LABELS.get(name, name), str(curve['seed']),
                  'reference', steps[keep],
                  np.asarray(curve['returns'], np.float64)[keep]))
  return runs


def smooth(values, weight=0.9):
  """TensorBoard's debiased exponential moving average."""
  out = np.empty(len(values))
  last, norm = 0.0, 0.0
  for i, v in enumerate(values):
    last = weight * last + (1 - weight) * v
    norm = weight * norm + (1 - weight)
    out[i] = last / norm
  return out


def aggregate(runs, weight=0.9, points=100):
  """{(task, method): (grid, mean, std, n_seeds)} over the steps every seed covers."""
  groups = collections.defaultdict(list)
  for run in runs:
    groups[(run.task, run.method)].append(run)
  curves = {}
  for key, group in groups.items():
    lo = max(r.steps[0] for r in group)
    hi = min(r.steps[-1] for r in group)
    if hi <= lo:
      grid = np.array([hi])
    else:
      grid = np.linspace(lo, hi, points)
    ys = np.stack([np.interp(grid, r.steps, smooth(r.values, weight)) for r in group])
    curves[key] = (grid, ys.mean(0), ys.std(0), len(group))
  return curves


def last_measured(runs):
  """{(task, method): (mean, std)} of each run's last logged value, unsmoothed."""
  groups = collections.defaultdict(list)
  for run in runs:
    groups[(run.task, run.method)].append(float(run.values[-1]))
  return {key: (np.mean(values), np.std(values)) for key, values in groups.items()}


def missing_references(names, tasks, runs):
  """``(label, task)`` of each requested reference that has no curve drawn (its task is
  not published, or it begins after our last step)."""
  drawn = {(r.method, r.task) for r in runs if r.source == 'reference'}
  return [(REFERENCE_LABELS.get(name, name), task)
          for name in names
          for task in tasks
          if (REFERENCE_LABELS.get(name, name), task) not in drawn]


def plot(curves, out, metric, cols=None):
  """One panel per task; returns the path written."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  tasks = sorted({t for t, _ in curves})
  methods = sorted({m for _, m in curves})
  colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
  cols = cols or min(len(tasks), 4)
  rows = math.ceil(len(tasks) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
  for ax, task in zip(axes.flat, tasks):
    for method in methods:
      if (task, method) not in curves:
        continue
      grid, mean, std, n = curves[(task, method)]
      marker = 'o' if len(grid) == 1 else None
      published = method.endswith('(published)')  # behind ours, dashed
      ax.plot(grid, mean, color=colours[method], marker=marker, label=f'{method} (n={n})',
              linestyle='--' if published else '-', zorder=1 if published else 2)
      ax.fill_between(grid, mean - std, mean + std, color=colours[method],
                      alpha=0.1 if published else 0.2, zorder=0)
    ax.set_title(task.replace('_', ' '))
    ax.set_xlabel('environment steps')
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  for ax in list(axes.flat)[len(tasks):]:
    ax.axis('off')
  fig.tight_layout()
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=120)
  plt.close(fig)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--logdirs', nargs='*', default=[], help='our runs ([LABEL=]PATH)')
  parser.add_argument('--upstream', nargs='*', default=[],
                      help='upstream Dreamer runs ([LABEL=]PATH)')
  parser.add_argument('--out', required=True, help='figure path (.png, .pdf, .svg)')
  parser.add_argument('--metric', default='test/return')
  parser.add_argument('--smoothing', type=float, default=0.9)
  parser.add_argument('--layout', default='task/method/seed')
  parser.add_argument('--task', default=None, help='one task name for every run')
  parser.add_argument(
      '--reference', nargs='*', default=[], choices=sorted(REFERENCE_LABELS),
      help='published DMC-vision curves drawn behind ours (mean ± std over '
      'seeds), up to the longest of our runs')
  args = parser.parse_args(argv)
  if not args.logdirs and not args.upstream:
    parser.error('give at least one run with --logdirs or --upstream')
  if not 0 <= args.smoothing < 1:
    parser.error(f'--smoothing must be in [0, 1), got {args.smoothing}')
  try:
    runs = load_runs(args.logdirs, args.metric, 'ours', args.layout, args.task)
    runs += load_runs(args.upstream, args.metric, 'upstream', args.layout, args.task)
  except ValueError as e:
    parser.error(str(e))
  if not runs:
    parser.error(f'no run holds the metric {args.metric!r}')
  if args.reference:
    if args.metric not in ('test/return', 'train/return'):
      parser.error('--reference curves are episode returns; use --metric test/return')
    tasks, horizon = sorted({r.task for r in runs}), 1.1 * max(int(r.steps[-1]) for r in runs)
    runs += load_reference(args.reference, tasks, horizon)
    for label, task in missing_references(args.reference, tasks, runs):
      print(f'{task}: no {label} curve drawn (none published, or fewer than two points up to '
            f'{horizon:.0f} env steps, our range)')
  curves = aggregate(runs, args.smoothing)
  path = plot(curves, args.out, args.metric)
  last = last_measured(runs)
  for (task, method), (grid, mean, _, n) in sorted(curves.items()):
    raw, spread = last[(task, method)]
    print(f'{task:24s} {method:28s} seeds {n}  last step {int(grid[-1]):>9d}  '
          f'{args.metric} last logged {raw:9.2f} ± {spread:.2f}  (smoothed curve ends at '
          f'{mean[-1]:.2f})')
  print(f'wrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
