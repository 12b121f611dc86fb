#!/usr/bin/env python
"""Table I for one task from a sweep's runs: every evaluation episode kept in a CSV, the paper's
table, the aggregate over seeds (rliable) and the learning curves with confidence bands.

    mummi-table1 --runs ~/runs/table1-walker_stand --out docs/results/table1
    mummi-table1 --out docs/results/table1             # from the committed CSVs only
    mummi-table1 --out docs/results/table1 --readme README.md   # and README's block
    mummi-table1 --out docs/results/table1 --check README.md    # exit 1 if it differs

Reads the trial logdirs under ``--runs`` (``<task>/<gin files>/seed<S>``, mummi_tf/cli/sweep.py's
layout): a finished trial's final evaluation (``sweep_eval.json``: its newest checkpoint, the
paper's 10 episodes at each missing level) and every run's evaluations during training
(``metrics.jsonl``). What it reads replaces that (task, gin files, seed)'s rows in the CSVs
under ``--out``, so runs finished on different machines or days accumulate there:

* ``<task>.csv``: one row per final evaluation episode (method, gin, seed, condition, episode,
  return, env_steps, commit);
* ``<task>_curves.csv``: one row per run, evaluation and condition (the mean over the
  evaluation's episodes), and the training episodes' returns (condition ``train``);
* ``<task>.md``: the paper's format (mean ± std over all episodes of all seeds, Table I), the
  aggregate over seeds (interquartile mean of the seeds' mean returns, stratified-bootstrap
  95 % CI, and the probability that MuMMI improves on each baseline, Agarwal et al. 2021 via
  ``rliable``) and DreamerV3's protocol (training returns over the last 10k env steps);
* ``<task>.png``: test return against env steps per missing level, IQM over seeds with its
  95 % CI band.

The bootstrap is seeded: the same CSVs give the same tables (the README's test relies on it).
Exit status: 0, 1 (``--check``: the README's block differs), 2 bad input (one line).
"""
import argparse
import collections
import csv
import json
import pathlib
import re
import sys

import numpy as np

from mummi_tf.errors import UsageError

CONDITIONS = ('none', 'medium', 'high')  # Table I's missing levels: 0 %, 37.5 %, 75 %
LEVELS = {'none': '0 %', 'medium': '37.5 %', 'high': '75 %'}
METHODS = ('mummi', 'mummi_b', 'cvrl', 'dreamer')  # Table I's column order
NAMES = {
    'mummi': 'MuMMI',
    'mummi_b': 'MuMMI-b',
    'cvrl': 'CVRL',
    'dreamer': 'Dreamer',
    'mssm_e': 'MSSM-e'
}
EPISODE_FIELDS = ('method', 'gin', 'seed', 'condition', 'episode', 'return', 'env_steps', 'commit')
CURVE_FIELDS = ('method', 'gin', 'seed', 'condition', 'env_steps', 'return', 'commit')
REPS = 5000  # bootstrap resamples of the tables (the curves' bands: a fifth)
LAST = 10000  # env steps of DreamerV3's protocol: training returns before the budget
# The README's block of a study (the --out folder's name) and task.
BEGIN, END = '<!-- {study}:{task} begin -->', '<!-- {study}:{task} end -->'

# ---------------------------------------------------------------------- reading the runs


def read_runs(runs, commit=None):
  """``{task: (episode rows, curve rows)}`` from the trial logdirs under ``runs``."""
  found = collections.defaultdict(lambda: ([], []))
  logdirs = sorted(p.parent for p in pathlib.Path(runs).glob('*/*/seed*/run.json'))
  if not logdirs:
    raise UsageError(f'--runs {runs}: no trial logdirs (<task>/<gin files>/seed<S>/run.json)')
  for logdir in logdirs:
    run = json.loads((logdir / 'run.json').read_text())
    key = {
        'method': run['method'],
        'gin': ' '.join(run.get('gin_files') or [run['method']]),
        'seed': int(run['seed']),
        'commit': run.get('commit') or commit or ''
    }
    episodes, curves = found[run['task']]
    episodes += final_episodes(logdir, key)
    curves += curve_rows(logdir, key)
  return dict(found)


def final_episodes(logdir, key):
  """The rows of ``sweep_eval.json`` (a finished trial's final evaluation), or none."""
  try:
    result = json.loads((logdir / 'sweep_eval.json').read_text())
  except (OSError, ValueError):
    return []
  return [
      dict(key, condition=condition, episode=i, env_steps=int(result['checkpoint']),
           **{'return': float(value)})
      for condition, values in result['returns'].items()
      for i, value in enumerate(values)
  ]


def curve_rows(logdir, key):
  """Each evaluation's mean return per condition and each training return in
  ``metrics.jsonl``. Where two evaluations share a step, the first is the training's own: the
  second is a later ``--eval_only`` of that checkpoint (before issue 36 it wrote here too, as the
  Table I sweep's final evaluation does at its run branch), whose episodes are the final ones."""
  rows, tested = [], set()
  try:
    lines = (logdir / 'metrics.jsonl').read_text().splitlines()
  except OSError:
    return rows
  pattern = re.compile(r'^test/return_(none|medium|high)$')
  for line in lines:
    try:
      metrics = json.loads(line)
    except ValueError:  # a line cut short by a crash
      continue
    for name, value in metrics.items():
      match = pattern.match(name)
      condition = match.group(1) if match else 'train' if name == 'train/return' else None
      if condition in CONDITIONS:
        if (condition, metrics['step']) in tested:
          continue
        tested.add((condition, metrics['step']))
      if condition:
        rows.append(
            dict(key, condition=condition, env_steps=int(metrics['step']),
                 **{'return': float(value)}))
  return rows


# ------------------------------------------------------------------------- the CSV files


def read_csv(path):
  if not path.exists():
    return []
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    row['seed'], row['env_steps'] = int(row['seed']), int(row['env_steps'])
    row['return'] = float(row['return'])
    if 'episode' in row:
      row['episode'] = int(row['episode'])
  return rows


def merge(old, new):
  """``old`` without the (gin, seed) runs that ``new`` has, then ``new``; sorted."""
  runs = {(r['gin'], r['seed']) for r in new}
  rows = [r for r in old if (r['gin'], r['seed']) not in runs] + list(new)
  return sorted(
      rows, key=lambda r:
      (r['gin'], r['seed'], r['condition'], r['env_steps'], r.get('episode', 0)))


def write_csv(path, rows, fields):
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: row[k] for k in fields})


# ------------------------------------------------------------------------------- tables


def label(gin):
  """A column's name: the paper's for the method, the setting's gin files after it
  (``small``, the CPU sizes, is left out)."""
  method, *rest = gin.split()
  rest = [g for g in rest if g != 'small']
  return NAMES.get(method, method) + (f' ({" ".join(rest)})' if rest else '')


def columns(rows):
  """The runs' gin labels in Table I's method order."""
  order = {m: i for i, m in enumerate(METHODS)}
  gins = {r['gin'] for r in rows}
  return sorted(gins, key=lambda g: (order.get(g.split()[0], len(order)), g))


def per_seed(rows, gin, condition):
  """``{seed: returns}`` of one column and condition."""
  seeds = collections.defaultdict(list)
  for r in rows:
    if r['gin'] == gin and r['condition'] == condition:
      seeds[r['seed']].append(r['return'])
  return dict(sorted(seeds.items()))


def paper_table(rows):
  """Table I's format: mean ± std over every episode of every seed."""
  gins = columns(rows)
  lines = ['| missing | ' + ' | '.join(label(g) for g in gins) + ' |', '|---|' + '---|' * len(gins)]
  for condition in CONDITIONS:
    cells = []
    for gin in gins:
      seeds = per_seed(rows, gin, condition)
      values = [v for returns in seeds.values() for v in returns]
      cells.append(f'{np.mean(values):.1f} ± {np.std(values):.1f} ({len(values)} ep., '
                   f'{len(seeds)} seed{"s" * (len(seeds) != 1)})' if values else '—')
    lines.append(f'| {condition} ({LEVELS[condition]}) | ' + ' | '.join(cells) + ' |')
  return lines


def scores(rows, gin, condition):
  """rliable's score matrix: (seeds, 1 task), each seed's mean return."""
  return np.array([[np.mean(v)] for v in per_seed(rows, gin, condition).values()])


def interval(score_dict, func, reps):
  """rliable's stratified-bootstrap point estimates and 95 % CIs, seeded."""
  import warnings
  from rliable import library as rly
  # rliable's StratifiedBootstrap draws its indices from NumPy's global generator (its
  # random_state reaches only arch's own draws): seed both.
  np.random.seed(0)
  with warnings.catch_warnings():  # arch: RandomState is deprecated for its Generator
    warnings.simplefilter('ignore', FutureWarning)
    return rly.get_interval_estimates(score_dict, func, reps=reps,
                                      random_state=np.random.RandomState(0))


def aggregate_table(rows, reps):
  """IQM of the seeds' mean returns with 95 % CIs, and P(MuMMI > baseline)."""
  from rliable import metrics
  gins = columns(rows)
  ours = next((g for g in gins if g.split()[0] == 'mummi'), None)
  lines = [
      '| missing | method | seeds | IQM [95 % CI] | P(MuMMI > method) [95 % CI] |',
      '|---|---|---|---|---|'
  ]
  for condition in CONDITIONS:
    for gin in gins:
      x = scores(rows, gin, condition)
      if not len(x):
        continue
      if len(x) < 2:
        iqm = f'{metrics.aggregate_iqm(x):.1f} (one seed: no interval)'
      else:
        point, ci = interval({gin: x}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps)
        iqm = f'{point[gin][0]:.1f} [{ci[gin][0, 0]:.1f}, {ci[gin][1, 0]:.1f}]'
      poi = '—'
      y = scores(rows, ours, condition) if ours else []
      if ours and gin != ours and len(x) >= 2 and len(y) >= 2:
        point, ci = interval({'p': (y, x)}, metrics.probability_of_improvement, reps)
        poi = f'{point["p"]:.2f} [{ci["p"][0, 0]:.2f}, {ci["p"][1, 0]:.2f}]'
      lines.append(f'| {condition} | {label(gin)} | {len(x)} | {iqm} | {poi} |')
  return lines


def dreamerv3_table(curves, budget):
  """DreamerV3's protocol: the mean training return over the last ``LAST`` env steps before
  ``budget``, per seed, beside the method."""
  lines = [
      f'| method | training return, last {LAST // 1000}k env steps, per seed | mean |',
      '|---|---|---|'
  ]
  for gin in columns(curves):
    values = {}
    for seed, returns in per_seed([r for r in curves if budget - LAST < r['env_steps'] <= budget],
                                  gin, 'train').items():
      values[seed] = np.mean(returns)
    if values:
      each = ', '.join(f'{v:.0f} (seed {s})' for s, v in values.items())
      lines.append(f'| {label(gin)} | {each} | {np.mean(list(values.values())):.1f} |')
  return lines


def markdown(task, episodes, curves, reps=REPS):
  """The task's tables (the block the README shows)."""
  budget = max((r['env_steps'] for r in episodes), default=0)
  commits = sorted({r['commit'] for r in episodes + curves if r['commit']})
  lines = [
      f'**{task}**, final checkpoints at {budget // 1000}k env steps, 10 episodes per seed '
      f'and missing level; commit {", ".join(commits) or "unrecorded"}.', ''
  ]
  if episodes:
    lines += paper_table(episodes) + [''] + aggregate_table(episodes, reps) + ['']
    lines += dreamerv3_table(curves, budget) + ['']
  else:
    lines[0] = f'**{task}**: no run has finished yet; commit {", ".join(commits) or "unrecorded"}.'
  lines += ['Every run, its latest evaluation during training (the mean over its episodes):', '']
  lines += progress_table(curves)
  return '\n'.join(lines) + '\n'


def progress_table(curves):
  """Where every run stands: its last evaluation (mean over its episodes at each level)."""
  lines = [
      '| run | seed | last evaluation (env steps) | none | medium | high |',
      '|---|---|---|---|---|---|'
  ]
  runs = sorted({(r['gin'], r['seed']) for r in curves}, key=lambda k:
                (columns(curves).index(k[0]), k[1]))
  for gin, seed in runs:
    tests = [
        r for r in curves if (r['gin'], r['seed']) == (gin, seed) and r['condition'] != 'train'
    ]
    if not tests:
      continue
    step = max(r['env_steps'] for r in tests)
    value = {r['condition']: f"{r['return']:.0f}" for r in tests if r['env_steps'] == step}
    lines.append(f'| {label(gin)} | {seed} | {step} | ' +
                 ' | '.join(value.get(c, '—') for c in CONDITIONS) + ' |')
  return lines


# ------------------------------------------------------------------------------- curves


def plot(task, curves, path, reps=REPS):
  """Test return against env steps, one panel per missing level, IQM over seeds and its
  95 % CI band (steps where a method has fewer than two seeds: the mean, no band)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from rliable import metrics
  fig, axes = plt.subplots(1, len(CONDITIONS), figsize=(5 * len(CONDITIONS), 3.6), sharey=True)
  for ax, condition in zip(axes, CONDITIONS):
    for gin in columns(curves):
      by_step = collections.defaultdict(list)
      for r in curves:
        if r['gin'] == gin and r['condition'] == condition:
          by_step[r['env_steps']].append(r['return'])
      steps = sorted(by_step)
      if not steps:
        continue
      mid, low, high = [], [], []
      for step in steps:
        x = np.array(by_step[step])[:, None]
        if len(x) < 2:
          mid.append(float(x.mean()))
          low.append(np.nan)
          high.append(np.nan)
          continue
        point, ci = interval({gin: x}, lambda s: np.array([metrics.aggregate_iqm(s)]),
                             max(reps // 5, 100))
        mid.append(point[gin][0])
        low.append(ci[gin][0, 0])
        high.append(ci[gin][1, 0])
      seeds = len({r['seed'] for r in curves if r['gin'] == gin})
      line, = ax.plot(
          np.array(steps) / 1000, mid, label=f'{label(gin)} ({seeds} seed{"s" * (seeds != 1)})')
      ax.fill_between(np.array(steps) / 1000, low, high, color=line.get_color(), alpha=0.2)
    ax.set_title(f'{task}, {LEVELS[condition]} missing')
    ax.set_xlabel('env steps (k)')
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('test return (IQM over seeds, 95 % CI)')
  axes[0].legend(fontsize='small')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


# --------------------------------------------------------------------------- the README


def readme_block(study, task, text):
  return f'{BEGIN.format(study=study, task=task)}\n{text}{END.format(study=study, task=task)}'


def update_readme(readme, study, task, text):
  """README text with the study's block of the task replaced; ``UsageError`` when it has
  none."""
  begin, end = BEGIN.format(study=study, task=task), END.format(study=study, task=task)
  pattern = re.compile(re.escape(begin) + '.*?' + re.escape(end), re.S)
  if not pattern.search(readme):
    raise UsageError(f'the README has no {begin} ... {end} block')
  return pattern.sub(lambda _: readme_block(study, task, text), readme)


# ------------------------------------------------------------------------------ the tool


def tasks_in(out):
  return sorted(p.stem for p in pathlib.Path(out).glob('*.csv') if not p.stem.endswith('_curves'))


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m mummi_tf.cli.table1', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      '--runs', type=pathlib.Path, default=None,
      help="a sweep folder (mummi_tf/cli/sweep.py's --out); omit to use the CSVs only")
  parser.add_argument('--out', type=pathlib.Path, default=pathlib.Path('docs/results/table1'))
  parser.add_argument('--commit', default=None,
                      help='the commit the runs ran on, where their run.json does not say')
  parser.add_argument('--readme', type=pathlib.Path, default=None, help='rewrite its block')
  parser.add_argument('--check', type=pathlib.Path, default=None,
                      help="exit 1 when this README's block differs from the CSVs' tables")
  parser.add_argument('--no_plot', action='store_true', help='tables only')
  parser.add_argument('--reps', type=int, default=REPS,
                      help=f'bootstrap resamples (default {REPS}, as the README)')
  args = parser.parse_args(argv)
  try:
    if args.runs is not None and not args.runs.is_dir():
      raise UsageError(f'--runs {args.runs} is not a folder')
    found = read_runs(args.runs, args.commit) if args.runs is not None else {}
    for task, (episodes, curves) in found.items():
      write_csv(args.out / f'{task}.csv', merge(read_csv(args.out / f'{task}.csv'), episodes),
                EPISODE_FIELDS)
      write_csv(args.out / f'{task}_curves.csv',
                merge(read_csv(args.out / f'{task}_curves.csv'), curves), CURVE_FIELDS)
    tasks = tasks_in(args.out)
    if not tasks:
      raise UsageError(f'{args.out} holds no results: give --runs')
    differ = []
    for task in tasks:
      episodes = read_csv(args.out / f'{task}.csv')
      curves = read_csv(args.out / f'{task}_curves.csv')
      text = markdown(task, episodes, curves, args.reps)
      if args.check is not None:
        readme = args.check.read_text()
        if readme_block(args.out.name, task, text) not in readme:
          differ.append(task)
        continue
      (args.out / f'{task}.md').write_text(text)
      if curves and not args.no_plot:
        plot(task, curves, args.out / f'{task}.png', args.reps)
      if args.readme is not None:
        args.readme.write_text(update_readme(args.readme.read_text(), args.out.name, task, text))
      print(text)
    if differ:
      print(
          f'{args.check}: the table of {", ".join(differ)} differs from {args.out} (rerun '
          f'with --readme {args.check})', file=sys.stderr)
      return 1
    return 0
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
