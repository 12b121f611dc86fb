"""Figures 2 and 3: the Agent.train update per method (vs Dreamer's) and per precision /
XLA (vs float32 plain tf.function), each configuration in a fresh `bench.update_probe`."""
from bench import report
from bench import runner

METHODS = ('mummi', 'mummi_b', 'cvrl', 'dreamer', 'mssm_e')
UNIT = 's/update'
MUMMI_GOAL = ('ratio_max', 0.7)
SPEEDUP = 1.25
PRECISION_GOAL = ('ratio_max', round(1 / SPEEDUP, 3))  # time ratio <= 0.8: >= 1.25x faster
# (label, precision, jit) of figure 3; the float32 plain baseline is figure 2's MuMMI run.
VARIANTS = (('auto', 'auto', False), ('float32_jit', 'float32', True), ('auto_jit', 'auto', True))


def probe(method, precision, jit, opts, timeout):
  args = [
      '-m', 'bench.update_probe', '--method', method, '--precision', precision, '--batch',
      opts['batch'], '--length', opts['length'], '--warmup', opts['warmup'], '--repeats',
      opts['repeats']
  ] + (['--jit'] if jit else []) + (['--tiny'] if opts['tiny'] else [])
  results, error = runner.run(args, timeout)
  if results and 'error' not in results[0]:
    return results[0]
  return {'error': (results[0]['error'] if results else error) or 'no result'}


def _describe(r, opts):
  dims = 'tiny dims (smoke)' if opts['tiny'] else 'paper dims (h 200, s^c 30, s^f 1024)'
  return (f'Agent.train (world model + actor + value), B={r["batch"]} T={r["length"]}, '
          f'{dims}, {r["policy"]}, jit_compile={r["jit"]}, {r["params"] / 1e6:.2f} M params; '
          f'first call (trace) {r["first_s"]:.1f} s excluded')


def update_figures(runs, opts):
  """Figure 2 from {method: probe result}."""
  out = {}
  base = runs.get('dreamer', {})
  for method in METHODS:
    if method not in runs:
      continue
    r, name = runs[method], f'update/{method}'
    goal = MUMMI_GOAL if method == 'mummi' else None
    if 'error' in r:
      out[name] = report.failed(name, UNIT, goal, r['error'])
      continue
    out[name] = report.figure(
        name, r['times'], UNIT, baseline_samples=base.get('times') if 'error' not in base else None,
        goal=goal, notes=_describe(r, opts) + '; baseline: the dreamer method, same settings',
        trace_s=r['first_s'], params=r['params'], batch=r['batch'], length=r['length'])
  return out


def precision_figures(runs, base, opts):
  """Figure 3 from {label: probe result}; `base` is the float32 plain MuMMI result."""
  out = {}
  for label, r in runs.items():
    name = f'precision/{label}'
    if 'error' in r:
      out[name] = report.failed(name, UNIT, PRECISION_GOAL, r['error'])
      continue
    entry = report.figure(
        name, r['times'], UNIT, baseline_samples=base.get('times') if 'error' not in base else None,
        goal=PRECISION_GOAL,
        notes=_describe(r, opts) + '; baseline: float32, plain tf.function (the float32 '
        'MuMMI probe of this invocation, = update/mummi when both ran); goal: >= 1.25x '
        'faster, i.e. time ratio <= 0.8', trace_s=r['first_s'], params=r['params'])
    entry['speedup'] = 1 / entry['ratio'] if entry['ratio'] else None
    out[name] = entry
  return out


def run_all(names, opts, timeout, smoke=False):
  """Runs the probes figures `names` ('update', 'precision') need; returns entries.

  `smoke`: MuMMI and Dreamer only, and only the default-precision variant.
  """
  runs = {}
  methods = (METHODS if not smoke else ('mummi', 'dreamer')) if 'update' in names else ('mummi',)
  for method in methods:
    runs[method] = probe(method, 'float32', False, opts, timeout)
  out = {}
  if 'update' in names:
    out.update(update_figures(runs, opts))
  if 'precision' in names:
    variants = {
        label: probe('mummi', precision, jit, opts, timeout)
        for label, precision, jit in (VARIANTS[:1] if smoke else VARIANTS)
    }
    out.update(precision_figures(variants, runs['mummi'], opts))
  return out, runs['mummi']
