#!/usr/bin/env python
"""A run's results as the markdown tables of ``docs/results/``, read from its ``metrics.jsonl``.

One row per evaluation: the test return at each missing-sensor condition (mean ± std over the
evaluation's episodes), the training episodes' return since the previous evaluation (mean and
range: sampled actions and exploration noise) and the wall time so far (the sum of the logged
windows' ``time/wall``: pauses between a stop and its resume do not count). A second table
gives the diagnostics that say whether the world model and the behaviour learner are healthy,
from the last training window at or before each evaluation: the KL (free-nats floor), the
imagined reward per agent step and the imagined value beside ``r / (1 - gamma)``, the value's
ceiling for that reward (eq. 5 / the lambda-return), InfoNCE accuracy per modality (eq. 16)
and the prior expert's share of the fused precision (eq. 11); and, from the evaluation itself
(condition ``none``), how bang-bang the actions are: the fraction saturated (|a| > 0.9) and
the fraction whose sign flips from one step to the next::

    mummi-summarize runs/full-mummi-small [--discount 0.99]

Reads no TensorFlow; the discount defaults to the run's ``operative_config.gin``.
"""
import argparse
import math
import pathlib
import re
import sys

import numpy as np

from mummi_tf.cli import plot

TEST = 'test/return'

ORDER = ('none', 'train', 'medium', 'high')  # mummi_tf.envs.missing's levels, fewest missing first


def conditions(row):
  """Missing-sensor conditions of an evaluation row (``test/return_<c>``), fewest missing
  first; ``['']`` for a run evaluated without conditions."""
  prefix = TEST + '_'
  names = [k[len(prefix):] for k in row if k.startswith(prefix)]
  names = [n for n in names if not n.startswith('std')]
  rank = {n: i for i, n in enumerate(ORDER)}
  return sorted(names, key=lambda n: (rank.get(n, len(ORDER)), n)) or ['']


def mean_std(row, condition):
  suffix = f'_{condition}' if condition else ''
  mean = row.get(TEST + suffix)
  std = row.get(f'{TEST}_std{suffix}')
  if mean is None:
    return '—'
  return f'{mean:.0f}' + (f' ± {std:.0f}' if std is not None else '')


def train_returns(rows, start, stop):
  """Mean (min–max) of the logged training returns in ``(start, stop]`` env steps."""
  values = [r['train/return'] for r in rows if 'train/return' in r and start < r['step'] <= stop]
  if not values:
    return '—'
  return f'{np.mean(values):.0f} ({min(values):.0f}–{max(values):.0f})'


def wall_minutes(rows, stop):
  seconds = sum(r.get('time/wall', 0.0) for r in rows if r['step'] <= stop)
  return f'{seconds / 60:.0f}' if seconds else '—'


def returns_table(rows):
  evals = [r for r in rows if TEST in r]
  if not evals:
    raise ValueError('No evaluation in this run yet (no "test/return" line in metrics.jsonl).')
  names = conditions(evals[-1])
  head = ['env steps'] + [f'test `{c}`' if c else 'test' for c in names]
  head += ['train return since the previous row, mean (min–max)', 'wall time (min)']
  lines = [_line(head), _line(['---'] * len(head))]
  previous = 0
  for row in evals:
    step = row['step']
    cells = [f'{step // 1000}k'] + [mean_std(row, c) for c in names]
    cells += [train_returns(rows, previous, step), wall_minutes(rows, step)]
    lines.append(_line(cells))
    previous = step
  return '\n'.join(lines)


def diagnostics_table(rows, discount):
  trained = [r for r in rows if 'imag_reward' in r]
  modalities = sorted({
      k.split('/', 1)[1] for r in trained for k in r if k.startswith('infonce_acc/')
  })
  head = ['env steps', 'KL', 'imagined reward / agent step', 'imagined value', 'r / (1 − γ)']
  head += [f'InfoNCE accuracy {m}' for m in modalities]
  head += ['prior share'] if any('precision_share/prior' in r for r in trained) else []
  behaviour = [f'test/action_{s}_none' for s in ('saturated', 'flips')]
  shows_behaviour = any(behaviour[0] in r for r in rows)
  head += ['actions saturated', 'sign flips'] if shows_behaviour else []
  lines = [_line(head), _line(['---'] * len(head))]
  for evaluation in [r for r in rows if TEST in r]:
    step = evaluation['step']
    before = [r for r in trained if r['step'] <= step]
    if not before:
      continue
    row = before[-1]
    cells = [
        f'{step // 1000}k',
        _num(row.get('kl')),
        _num(row['imag_reward']),
        _num(row.get('imag_value'), 1),
        _num(row['imag_reward'] / (1 - discount), 0)
    ]
    cells += [_num(row.get(f'infonce_acc/{m}')) for m in modalities]
    if 'prior share' in head:
      cells.append(_num(row.get('precision_share/prior')))
    cells += [_num(evaluation.get(k)) for k in behaviour] if shows_behaviour else []
    lines.append(_line(cells))
  return '\n'.join(lines)


def run_discount(logdir, default=0.99):
  """``ActorCritic.discount`` of the run's operative config, else ``default``."""
  path = pathlib.Path(logdir) / 'operative_config.gin'
  if path.is_file():
    match = re.search(r'^ActorCritic\.discount\s*=\s*([0-9.eE+-]+)', path.read_text(), re.M)
    if match:
      return float(match.group(1))
  return default


def _num(value, digits=2):
  return '—' if value is None or not math.isfinite(value) else f'{value:.{digits}f}'


def _line(cells):
  return '| ' + ' | '.join(cells) + ' |'


def by_step(rows):
  """One row per env step, later lines overriding earlier ones (a resumed run logs the steps
  after its checkpoint again), the training window's and the evaluation's merged."""
  merged = {}
  for row in rows:
    merged.setdefault(int(row['step']), {}).update(row)
  return [merged[s] for s in sorted(merged)]


def summarize(logdir, discount=None):
  path = pathlib.Path(logdir) / 'metrics.jsonl'
  if not path.is_file():
    raise ValueError(f'{path} does not exist; give a run directory (one holding metrics.jsonl).')
  rows = by_step(plot.read_rows(path))
  discount = run_discount(logdir) if discount is None else discount
  return returns_table(rows) + '\n\n' + diagnostics_table(rows, discount) + '\n'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('logdir', help='a run directory (holding metrics.jsonl)')
  parser.add_argument('--discount', type=float, default=None,
                      help="gamma for r / (1 - gamma); default: the run's operative_config.gin")
  args = parser.parse_args(argv)
  try:
    print(summarize(args.logdir, args.discount), end='')
  except ValueError as e:
    print(f'summarize: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
