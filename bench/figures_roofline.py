"""Figure group `roofline` (issue 16): the update's FLOP rate against this machine's dense
matmul peak, whole and per part; each (method, precision) in a fresh `bench.roofline_probe`
(the Keras precision policy is global).

Method:
- FLOPs: `bench.flops` on the traced graph of `Agent.train` (world model, actor, value;
  forward and backward): the dense ops (matmuls, convolutions and their gradients) as 2 m n k
  each, loop bodies (the RSSM's `tf.scan` and its gradient) times their trip count T. TF's
  own `tf.compat.v1.profiler` float_operation count sees neither loop bodies nor branches of
  a TF 2 graph (they count zero), hence the walker; elementwise ops are left out.
- Peak: a `--matmul`-square `tf.matmul` (2048; smoke 256) in float32 and in bfloat16, timed
  in every repeat beside the update, so that both see the same load. A dtype's peak is its
  best sample of the run: load only ever slows a sample down, so the best is the nearest to
  what the machine reaches. `roofline/peak_<dtype>` shows the samples.
- Fraction of peak: the time the update's FLOPs need at peak (each dtype's FLOPs at its
  dtype's peak: a mixed_bfloat16 update keeps the GRU, the distribution heads and InfoNCE in
  float32) over its measured time. Figures: value = achieved GFLOP/s (median of the
  repeats), baseline = the effective peak (FLOPs / time at peak), ratio = fraction of peak;
  goal for the update: ratio >= 0.5. Extra fields: flops, seconds, peak_gflops, fraction.
- Parts (`roofline_probe.part_functions`): each part's forward + backward timed as its own
  `tf.function` on the tensors the update computes, FLOPs counted the same way; they
  partition the update's FLOPs. Timed alone they lose the overlap of the whole graph (and
  the optimisers are in none), so their times need not sum to the update's.
- Bottleneck: the part, or `rest` (update time minus the parts' times: optimisers,
  lambda-returns, metrics), that loses the most time against its time at peak; named in the
  update figure's note with its fraction of peak and how narrow its GEMMs are (the
  FLOP-weighted median of min(m, n, k), im2col dims for convolutions; the peak's is 2048): a
  narrow side leaves little work per loaded byte and per thread.
"""
import statistics

from bench import report
from bench import runner

CONFIGS = (('mummi', 'float32'), ('mummi', 'auto'), ('dreamer', 'float32'), ('dreamer', 'auto'))
# Smoke: both methods and both precisions, in two processes.
SMOKE_CONFIGS = (('mummi', 'float32'), ('dreamer', 'auto'))
MATMUL, SMOKE_MATMUL = 2048, 256
UNIT = 'GFLOP/s'
GOAL = ('ratio_min', 0.5)
PARTS = {
    'encoders': 'conv and MLP encoders',
    'experts': 'modality experts q(s^f|x^m)',
    'fusion_infonce': 'fusion + InfoNCE heads',
    'fusion_decoders': 'fusion + decoders',
    'observe': 'RSSM scan over T (observe), KL, reward head',
    'imagination': 'imagined rollout with the actor (and its entropy), reward and value heads '
                   '(actor loss)',
    'actor_value': 'value loss',
}


def probe(method, precision, opts, timeout):
  args = [
      '-m', 'bench.roofline_probe', '--method', method, '--precision', precision, '--batch',
      opts['batch'], '--length', opts['length'], '--warmup', opts['warmup'], '--repeats',
      opts['repeats'], '--matmul', SMOKE_MATMUL if opts['tiny'] else MATMUL
  ] + (['--tiny'] if opts['tiny'] else [])
  results, error = runner.run(args, timeout)
  if results and 'error' not in results[0]:
    return results[0]
  return {'error': (results[0]['error'] if results else error) or 'no result'}


def peaks(runs):
  """{dtype: best GFLOP/s sample} over every probe of the run."""
  out = {}
  for r in runs:
    for dtype, samples in r['peaks'].items():
      out[dtype] = max(out.get(dtype, 0.0), max(samples))
  return out


def at_peak(by_dtype, peak):
  """Seconds the FLOPs {dtype: flops} need at `peak` (dtypes without one: float32's)."""
  return sum(f / (peak.get(d) or peak['float32']) / 1e9 for d, f in by_dtype.items())


def rate_figure(name, measured, peak, goal, notes, **extra):
  """GFLOP/s of `measured` ({'flops', 'by_dtype', 'times', ...}) vs its effective peak."""
  flops = measured['flops']
  seconds = statistics.median(measured['times'])
  effective = flops / at_peak(measured['by_dtype'], peak) / 1e9 if flops else None
  entry = report.figure(name, [flops / t / 1e9 for t in measured['times']
                              ], UNIT, baseline=effective, goal=goal, notes=notes, flops=flops,
                        seconds=seconds, peak_gflops=effective, flops_by_dtype=measured['by_dtype'],
                        median_width=measured['median_width'], **extra)
  entry['fraction'] = entry['ratio']
  return entry


def losses(r, peak):
  """{part or 'rest': seconds lost against its time at peak}."""
  parts = r['parts']
  out = {k: statistics.median(p['times']) - at_peak(p['by_dtype'], peak) for k, p in parts.items()}
  rest = statistics.median(r['update']['times']) - sum(
      statistics.median(p['times']) for p in parts.values())
  out['rest'] = rest - at_peak(r['update']['by_dtype'], peak) + sum(
      at_peak(p['by_dtype'], peak) for p in parts.values())
  return out


def why(r, peak, part):
  """One sentence: how much `part` takes and how far from peak it runs."""
  seconds = statistics.median(r['update']['times'])
  if part == 'rest':
    rest = seconds - sum(statistics.median(p['times']) for p in r['parts'].values())
    return (f'rest (optimisers, lambda-returns, metrics; no dense FLOPs): {rest:.3g} s of '
            f'{seconds:.3g} s')
  p = r['parts'][part]
  own = statistics.median(p['times'])
  return (f'{part} ({PARTS[part]}): {own:.3g} s of {seconds:.3g} s at '
          f'{at_peak(p["by_dtype"], peak) / own:.0%} of peak; narrowest GEMM side '
          f'{p["median_width"]} (FLOP-weighted median; the peak matmul: {r["matmul"]})')


def config_figures(r, peak, tiny):
  """The update's figure and its parts' figures of one probe result."""
  base = f'roofline/{r["method"]}/{r["policy"]}'
  dims = 'tiny dims (smoke)' if tiny else 'paper dims'
  seconds = statistics.median(r['update']['times'])
  lost = losses(r, peak)
  worst = max(lost, key=lost.get)
  parts_s = sum(statistics.median(p['times']) for p in r['parts'].values())
  notes = (f'Agent.train FLOPs (dense ops, loops x trip count) / time, B={r["batch"]} '
           f'T={r["length"]}, {dims}, {r["policy"]}, vs the best {r["matmul"]}^2 tf.matmul of '
           f'this run per dtype; most time lost: {why(r, peak, worst)}; parts timed alone sum '
           f'to {parts_s / seconds:.0%} of the update')
  out = {
      base: rate_figure(base, r['update'], peak, GOAL, notes, bottleneck=worst, lost_seconds={
          k: round(v, 4) for k, v in lost.items()
      }, parts_seconds=parts_s, params=r['params'], batch=r['batch'], length=r['length'])
  }
  for part, p in r['parts'].items():
    share = statistics.median(p['times']) / seconds
    notes = (f'{PARTS[part]}, forward + backward as its own tf.function; '
             f'{p["flops"] / max(r["update"]["flops"], 1):.0%} of the update FLOPs, '
             f'time {share:.0%} of the update')
    out[f'{base}/{part}'] = rate_figure(f'{base}/{part}', p, peak, None, notes, time_share=share,
                                        flops_share=p['flops'] / max(r['update']['flops'], 1))
  return out


def peak_figures(runs, peak):
  out = {}
  for dtype in sorted(peak):
    samples = [s for r in runs for s in r['peaks'].get(dtype, ())]
    out[f'roofline/peak_{dtype}'] = report.figure(
        f'roofline/peak_{dtype}', samples, UNIT,
        notes=f'{runs[0]["matmul"]}^2 {dtype} tf.matmul, timed beside every update repeat of '
        f'every roofline probe; the best sample ({peak[dtype]:.0f}) is the peak', best=peak[dtype])
  return out


def figures(opts, timeout):
  """Runs the probes; returns the roofline entries. `opts`: batch, length, warmup, repeats,
  tiny (smoke: tiny dims, SMOKE_CONFIGS)."""
  runs, out = [], {}
  for method, precision in SMOKE_CONFIGS if opts['tiny'] else CONFIGS:
    r = probe(method, precision, opts, timeout)
    if 'error' in r:
      name = f'roofline/{method}/{precision}'
      out[name] = report.failed(name, UNIT, GOAL, r['error'])
    else:
      runs.append(r)
  if not runs:
    return out
  peak = peaks(runs)
  out.update(peak_figures(runs, peak))
  for r in runs:
    out.update(config_figures(r, peak, opts['tiny']))
  return out
