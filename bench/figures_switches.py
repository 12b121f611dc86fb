"""Speed switches of the update at `gin/small.gin`'s sizes (B 16 x T 50, all 800 imagination
starts, mixed bfloat16), each against the setting without it, on `Agent.train` of MuMMI and
Dreamer:

- `threads`: small.gin's thread pools (`precision.set_threads`: one thread per op, two ops side
  by side; on by default) against TensorFlow's default pools (one thread per core in each);
- `order`: upstream Dreamer's update order (`Agent.model_step_first = False`: every gradient at
  the same parameters, the world model's step last; off by default) against Dreamer's
  Algorithm 1, both with small.gin's pools.

The pools are fixed when TF starts, so each sample is one fresh `bench.update_probe` process
(the median of its timed updates), the two settings alternating process by process; the figure
is the switch's time over the setting without it (< 1: faster)."""
import collections

from bench import report
from bench import runner

UNIT = 's/update'
SMALL_POOLS = (1, 2)
METHODS = ('mummi', 'dreamer')
Switch = collections.namedtuple('Switch', 'on off goal text')
SWITCHES = {
    'threads': Switch(
        dict(threads=SMALL_POOLS, bindings=()),
        dict(threads=(0, 0), bindings=()),
        ('ratio_max', 1.0),  # the default must not be slower than TF's pools
        f"intra_op {SMALL_POOLS[0]} / inter_op {SMALL_POOLS[1]} threads (small.gin); "
        "baseline: TF's default pools"),
    'order': Switch(
        dict(threads=SMALL_POOLS, bindings=('Agent.model_step_first = False',)),
        dict(threads=SMALL_POOLS, bindings=()), None,
        'Agent.model_step_first = False (upstream\'s order; not the default); baseline: '
        'the default order (the world model steps first), both with small.gin\'s pools'),
}


def probe(method, setting, opts, timeout):
  args = [
      '-m', 'bench.update_probe', '--method', method, '--precision', 'auto', '--batch',
      opts['batch'], '--length', opts['length'], '--warmup', opts['warmup'], '--repeats', 3,
      '--threads', ','.join(map(str, setting['threads']))
  ] + (['--tiny'] if opts['tiny'] else ['--gin_file', 'small'])
  for binding in setting['bindings']:
    args += ['--binding', binding]
  results, error = runner.run(args, timeout)
  if results and 'error' not in results[0]:
    return results[0]
  return {'error': (results[0]['error'] if results else error) or 'no result'}


def figure(switch, method, opts, timeout):
  """`<switch>/<method>_small`: `opts['repeats']` rounds of one process each way."""
  name, spec = f'{switch}/{method}_small', SWITCHES[switch]
  samples, seen = {'on': [], 'off': []}, {}
  for _ in range(opts['repeats']):
    for side in samples:
      r = probe(method, getattr(spec, side), opts, timeout)
      if 'error' in r:
        return report.failed(name, UNIT, spec.goal, r['error'])
      samples[side].append(sorted(r['times'])[len(r['times']) // 2])
      seen[side] = r  # what the probe ran with, as it reports it
  dims = 'tiny dims (smoke)' if opts['tiny'] else "gin/small.gin's sizes, mixed bfloat16"
  return report.figure(
      name, samples['on'], UNIT, baseline_samples=samples['off'], goal=spec.goal,
      notes=(f'Agent.train of {method}, B={seen["on"]["batch"]} T={seen["on"]["length"]}, '
             f'{dims}; value: {spec.text}; one fresh process per sample (median of its 3 timed '
             f'updates after {opts["warmup"]} untimed), the two settings alternating'),
      threads=seen['on']['threads'], baseline_threads=seen['off']['threads'],
      model_step_first=seen['on']['model_step_first'],
      baseline_model_step_first=seen['off']['model_step_first'])


def figures(switches, opts, timeout, smoke=False):
  """Every figure of ``switches`` (names of SWITCHES), per method (MuMMI only in smoke)."""
  return {
      f'{switch}/{method}_small': figure(switch, method, opts, timeout) for switch in switches
      for method in (METHODS[:1] if smoke else METHODS)
  }
