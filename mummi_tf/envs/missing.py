"""Missing-sensor schedules (paper Sec. V "missing data"; prior code's process as `reference`).

Per episode and per modality, independently, a boolean mask over the episode's observations
(True = the sensor is missing at that step) is drawn:

- `paper` mode: segments with uniformly random start and uniformly random length in
  1..max_segment (cut at the episode's ends, so every step is equally likely dropped) are dropped until exactly round(rate * length) observations are missing
  (the last segment is cut short), so every episode misses the target fraction: 37.5 % for
  training, `none` 0 %, `medium` 37.5 %, `high` 75 % at test.
- `reference` mode: the prior code's process. At each present step a segment starts with
  probability p; its length is uniform in 1..max_segment. The long-run missing fraction is
  E[L] / (E[L] + (1 - p) / p) (`reference_fraction`): ~28 % for p = 0.05, ~45 % for p = 0.1.
"""
import numpy as np

MODES = ('paper', 'reference')
LEVELS = {  # level name -> rate per mode (paper: fraction; reference: start probability)
    'paper': {'none': 0.0, 'train': 0.375, 'medium': 0.375, 'high': 0.75},
    'reference': {'none': 0.0, 'train': 0.05, 'medium': 0.05, 'high': 0.1},
}


def resolve_rate(mode, missing):
  """`missing` (a level name or a number in [0, 1)) -> the rate of `mode`."""
  if mode not in MODES:
    raise ValueError(f'unknown missing mode {mode!r}; valid: {", ".join(MODES)}')
  if isinstance(missing, str):
    if missing not in LEVELS[mode]:
      raise ValueError(f'unknown missing level {missing!r}; valid: '
                       f'{", ".join(LEVELS[mode])} or a number in [0, 1)')
    return LEVELS[mode][missing]
  rate = float(missing)
  if not 0.0 <= rate < 1.0:
    raise ValueError(f'missing rate {missing!r} is outside [0, 1)')
  return rate


def paper_mask(rng, length, fraction, max_segment=14):
  """Exactly round(fraction * length) missing steps in random segments."""
  mask = np.zeros(length, bool)
  need = int(round(fraction * length))
  while need > 0:
    seg = int(rng.integers(1, max_segment + 1))
    start = int(rng.integers(1 - seg, length))  # segments may run over either end, so
    lo, hi = max(start, 0), min(start + seg, length)  # every step is equally likely hit
    new = np.flatnonzero(~mask[lo:hi])[:need] + lo
    mask[new] = True
    need -= len(new)
  return mask


def reference_mask(rng, length, p, max_segment=14):
  """The prior code's process: a segment starts with probability p at each present step."""
  mask = np.zeros(length, bool)
  t = 0
  while t < length:
    if rng.random() < p:
      seg = int(rng.integers(1, max_segment + 1))
      mask[t:t + seg] = True
      t += seg
    else:
      t += 1
  return mask


def reference_fraction(p, max_segment=14):
  """Long-run missing fraction of `reference_mask` (renewal argument)."""
  if p == 0:
    return 0.0
  mean_len = (max_segment + 1) / 2
  return mean_len / (mean_len + (1 - p) / p)


def make_mask(mode, rng, length, rate, max_segment=14):
  fn = paper_mask if mode == 'paper' else reference_mask
  return fn(rng, length, rate, max_segment)


def missing_fraction(episode):
  """Measured missing fraction per modality of an episode dict (from its `_flag` keys)."""
  return {
      key[:-5]: float(1.0 - np.mean(value, dtype=np.float64))
      for key, value in episode.items()
      if key.endswith('_flag')
  }
