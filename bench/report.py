"""Figures, their statistics and the two report files (results.json, results.md).

A figure is one measured quantity: the median of >= 2 (smoke) or >= 5 repeats, with min
and max, compared with a baseline measured in the same run; ``ratio`` = value / baseline
and ``met`` tells whether the ratio (or the value, for figures without a baseline) meets
the goal. Nothing here imports TensorFlow.
"""
import datetime
import json
import os
import pathlib
import platform
import statistics

# goal kinds: ('ratio_max', x): ratio <= x; ('ratio_min', x): ratio >= x;
# ('value_max', x): value <= x; None: reported only.
GOAL_TEXT = {'ratio_max': 'ratio <= {}', 'ratio_min': 'ratio >= {}', 'value_max': 'value <= {}'}


def stats(samples):
  """(median, min, max, repeats) of a list of numbers."""
  samples = [float(s) for s in samples]
  if not samples:
    raise ValueError('stats: no samples.')
  return statistics.median(samples), min(samples), max(samples), len(samples)


def figure(name, samples, unit, baseline=None, baseline_samples=None, goal=None, notes='',
           summary=None, **extra):
  """One results entry; ``baseline`` defaults to the median of ``baseline_samples``.

  ``samples``: the repeats, or None with ``summary`` = (median, min, max, repeats) when
  the measuring code returns only those. ``ratio`` is always value / baseline;
  ``goal``: None (reported only) or (kind, threshold) with kind in GOAL_TEXT.
  """
  median, lo, hi, repeats = summary if summary is not None else stats(samples)
  entry = {
      'name': name,
      'value': median,
      'unit': unit,
      'median': median,
      'min': lo,
      'max': hi,
      'repeats': int(repeats),
      'samples': [float(s) for s in samples or ()]
  }
  if baseline_samples is not None:
    b_median, b_lo, b_hi, b_repeats = stats(baseline_samples)
    baseline = b_median
    entry['baseline_min'], entry['baseline_max'] = b_lo, b_hi
    entry['baseline_repeats'] = b_repeats
  entry['baseline'] = None if baseline is None else float(baseline)
  entry['ratio'] = (median / baseline) if baseline else None
  entry['goal'] = None if goal is None else GOAL_TEXT[goal[0]].format(goal[1])
  entry['met'] = _met(entry, goal)
  entry['notes'] = notes
  entry.update(extra)
  return entry


def _met(entry, goal):
  if goal is None:
    return None
  kind, threshold = goal
  if kind == 'value_max':
    return bool(entry['value'] <= threshold)
  if entry['ratio'] is None:
    return None
  if kind == 'ratio_max':
    return bool(entry['ratio'] <= threshold)
  return bool(entry['ratio'] >= threshold)


def failed(name, unit, goal, error):
  """An entry for a figure that could not be measured (the error is kept, met False)."""
  return {
      'name': name,
      'value': None,
      'unit': unit,
      'median': None,
      'min': None,
      'max': None,
      'repeats': 0,
      'samples': [],
      'baseline': None,
      'ratio': None,
      'goal': None if goal is None else GOAL_TEXT[goal[0]].format(goal[1]),
      'met': False if goal else None,
      'notes': f'not measured: {error}'
  }


def machine():
  """CPU model, cores, memory, load, TF version (when importable), date."""
  info = {'cpu': platform.processor() or platform.machine(), 'cores': os.cpu_count()}
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        info['cpu'] = line.split(':', 1)[1].strip()
        break
  except OSError:
    pass
  try:
    for line in pathlib.Path('/proc/meminfo').read_text().splitlines():
      if line.startswith('MemTotal'):
        info['memory_gib'] = round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  try:
    info['load_average'] = [round(x, 2) for x in os.getloadavg()]
  except OSError:
    pass
  try:
    from importlib import metadata
    info['tensorflow'] = metadata.version('tensorflow')
  except Exception:  # noqa: BLE001 - a missing TF is reported, not fatal
    info['tensorflow'] = None
  info['python'] = platform.python_version()
  info['date'] = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
  return info


def _fmt(x):
  if x is None:
    return '—'
  if isinstance(x, bool):
    return 'yes' if x else 'no'
  if abs(x) >= 100:
    return f'{x:.0f}'
  if abs(x) >= 10:
    return f'{x:.1f}'
  return f'{x:.3g}'


def _kept(results, info):
  """A line naming the figures an `--only` run kept from earlier runs (their dates), or none."""
  dates = {}
  for entry in results.values():
    if entry.get('date', info['date']) != info['date']:
      dates.setdefault(entry['date'], []).append(entry['name'])
  if not dates:
    return []
  kept = '; '.join(f'{len(names)} measured {date} ({names[0].split("/")[0]} …)'
                   for date, names in sorted(dates.items()))
  return [
      '', f'Figures kept from earlier runs (not rerun by this one, perhaps on another machine): '
      f'{kept}.'
  ]


def markdown(results, info, command):
  lines = [
      '# Benchmark results', '',
      f'Measured {info["date"]} on {info["cpu"]}, {info["cores"]} cores, '
      f'{info.get("memory_gib", "?")} GiB RAM, TensorFlow {info.get("tensorflow")}, '
      f'Python {info["python"]}; load average at the start '
      f'{info.get("load_average")} (a shared machine: absolute times are noisy, '
      'ratios are measured side by side).', *_kept(results, info), '', f'Reproduce: `{command}`',
      '', '| figure | value (median) | min – max | n | unit | baseline | ratio | goal | met |',
      '|---|---|---|---|---|---|---|---|---|'
  ]
  for entry in results.values():
    lines.append(
        f'| {entry["name"]} | {_fmt(entry["value"])} | {_fmt(entry["min"])} – '
        f'{_fmt(entry["max"])} | {entry["repeats"]} | {entry["unit"]} | '
        f'{_fmt(entry["baseline"])} | {_fmt(entry["ratio"])} | {entry["goal"] or "reported"} '
        f'| {_fmt(entry["met"]) if entry["met"] is not None else "—"} |')
  lines += ['', '## Notes', '']
  for entry in results.values():
    if entry.get('notes'):
      lines.append(f'- **{entry["name"]}**: {entry["notes"]}')
  return '\n'.join(lines) + '\n'


def write(out, results, info, command, options):
  """Writes ``out/results.json`` and ``out/results.md``; returns their paths."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  payload = {'machine': info, 'command': command, 'options': options, 'figures': results}
  json_path, md_path = out / 'results.json', out / 'results.md'
  json_path.write_text(json.dumps(payload, indent=2) + '\n')
  md_path.write_text(markdown(results, info, command))
  return json_path, md_path
