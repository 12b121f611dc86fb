"""What the touch sensor reports and how the sensors go missing, from a run's episode files
(issue 32, items 4 and 5; docs/results/2026-12-07-touch-and-masks/README.md).

    .venv/bin/python docs/results/scripts/touch_stats.py LOGDIR/episodes [--keys 800]

Per-foot contact rate and log1p force, how often both images or all three sensors are missing
at once (against independent masks), the lengths of missing segments, and the best top-1
accuracy any touch-only InfoNCE expert could reach among ``--keys`` candidates: identical touch
vectors (no contact: (0, 0)) get identical expert means, so a key whose value k candidates share
is found with probability 1/k at best.
"""
import argparse
import pathlib

import numpy as np

MODALITIES = ('rgb', 'depth', 'touch')


def missing_runs(flags):
  """Lengths of the runs of zeros in ``flags``."""
  lengths, run = [], 0
  for flag in flags:
    if flag == 0:
      run += 1
    elif run:
      lengths.append(run)
      run = 0
  return lengths + ([run] if run else [])


def touch_bound(touch, keys, rng, draws=50):
  """Mean and std over ``draws`` batches of ``keys`` present steps of the best top-1 accuracy."""
  found = []
  for _ in range(draws):
    batch = touch[rng.choice(len(touch), keys, replace=False)]
    _, index, counts = np.unique(batch, axis=0, return_inverse=True, return_counts=True)
    found.append(np.mean(1.0 / counts[index.ravel()]))
  return np.mean(found), np.std(found)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('episodes', type=pathlib.Path)
  parser.add_argument('--keys', type=int, default=800, help="InfoNCE candidates (B x T)")
  args = parser.parse_args(argv)
  episodes = [np.load(path) for path in sorted(args.episodes.glob('*.npz'))]
  flags = {m: np.concatenate([e[f'{m}_flag'][1:] for e in episodes]) for m in MODALITIES}
  touch = np.concatenate([e['touch'][1:][e['touch_flag'][1:] > 0] for e in episodes])
  print(f'{len(episodes)} episodes, {len(flags["rgb"])} agent steps')
  for m in MODALITIES:
    runs = np.concatenate([missing_runs(e[f'{m}_flag'][1:]) for e in episodes])
    print(f'{m}: present {flags[m].mean():.4f}; missing segments: {len(runs)}, mean length '
          f'{runs.mean():.1f} agent steps, median {np.median(runs):.0f}, max {runs.max()}')
  rate = 1 - flags['rgb'].mean()
  images = np.mean((flags['rgb'] == 0) & (flags['depth'] == 0))
  every = np.mean(np.all([flags[m] == 0 for m in MODALITIES], axis=0))
  print(f'both images missing {images:.4f} (independent masks: {rate ** 2:.4f}); all three '
        f'{every:.4f} ({rate ** 3:.4f})')
  for foot in range(touch.shape[1]):
    v = touch[:, foot]
    print(f'touch[{foot}] (present steps): contact {np.mean(v > 0):.3f}, log1p force mean '
          f'{v.mean():.2f}, p90 {np.percentile(v, 90):.2f}, max {v.max():.2f}')
  print(f'no contact at all: {np.mean((touch == 0).all(1)):.3f} of present touch steps')
  mean, std = touch_bound(touch, args.keys, np.random.default_rng(0))
  print(f'best touch-only top-1 among {args.keys} keys: {mean:.3f} ± {std:.3f} '
        f'(chance {1 / args.keys:.5f})')


if __name__ == '__main__':
  main()
