"""The thread-pool switch of `gin/small.gin` (`precision.set_threads`: one thread per op, two ops
side by side) against TensorFlow's default pools (one thread per core in each), on
`Agent.train` at `small.gin`'s sizes (B 16 x T 50, all 800 imagination starts, mixed bfloat16)
for MuMMI and Dreamer. The pools are fixed when TF starts, so each sample is one fresh
`bench.update_probe` process (the median of its timed updates), the two settings alternating
process by process; the figure is the switch's time over the default's (< 1: faster)."""
from bench import report
from bench import runner

UNIT = 's/update'
ON, OFF = (1, 2), (0, 0)  # small.gin's pools; TF's default
GOAL = ('ratio_max', 1.0)  # the switch must not be slower
METHODS = ('mummi', 'dreamer')


def probe(method, threads, opts, timeout):
  args = [
      '-m', 'bench.update_probe', '--method', method, '--precision', 'auto', '--batch',
      opts['batch'], '--length', opts['length'], '--warmup', opts['warmup'], '--repeats', 3,
      '--threads', ','.join(map(str, threads))
  ] + (['--tiny'] if opts['tiny'] else ['--gin_file', 'small'])
  results, error = runner.run(args, timeout)
  if results and 'error' not in results[0]:
    return results[0]
  return {'error': (results[0]['error'] if results else error) or 'no result'}


def figures(opts, timeout, smoke=False):
  """`threads/<method>_small`: per method, `opts['repeats']` rounds of one process each way."""
  out = {}
  for method in METHODS[:1] if smoke else METHODS:
    name = f'threads/{method}_small'
    samples, pools = {ON: [], OFF: []}, {}
    for _ in range(opts['repeats']):
      for threads in (ON, OFF):
        r = probe(method, threads, opts, timeout)
        if 'error' in r:
          out[name] = report.failed(name, UNIT, GOAL, r['error'])
          break
        samples[threads].append(sorted(r['times'])[len(r['times']) // 2])
        pools[threads] = r['threads']  # as TF reports them in the probe (0: its default)
      if name in out:
        break
    if name in out:
      continue
    dims = 'tiny dims (smoke)' if opts['tiny'] else "gin/small.gin's sizes, mixed bfloat16"
    out[name] = report.figure(
        name, samples[ON], UNIT, baseline_samples=samples[OFF], goal=GOAL,
        notes=(f'Agent.train of {method}, B={r["batch"]} T={r["length"]}, {dims}; value: '
               f'intra_op {ON[0]} / inter_op {ON[1]} threads (small.gin); baseline: TF\'s '
               f'default pools; one fresh process per sample (median of its 3 timed updates '
               f'after {opts["warmup"]} untimed), the two settings alternating'), threads=pools[ON],
        baseline_threads=pools[OFF])
  return out
