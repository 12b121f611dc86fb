"""What a run prints besides its progress bar (its console story): a duration in words, one
line per evaluation, and the closing lines with the commands that come next."""
import numpy as np

from mummi_tf import logger as logger_lib


def duration(seconds):
  """``about 2.5 h``, ``about 12 min``, ``under 2 min``; past two days, how many and what to
  run instead."""
  hours = seconds / 3600
  if hours >= 48:
    return (f'about {hours / 24:.0f} days on this machine: for a first run use GIN="mummi '
            'quick" (minutes), and a GPU for the paper\'s schedule')
  if hours >= 1:
    return f'about {hours:.1f} h'
  return f'about {hours * 60:.0f} min' if hours * 60 >= 1.5 else 'under 2 min'


def evaluation_line(step, results):
  """``eval at N env steps: none 358 ± 50 · medium … (5 episodes each)``."""
  parts = [f'{name} {np.mean(r):.0f} ± {np.std(r):.0f}' for name, r in results.items() if r]
  counts = sorted({len(r) for r in results.values()})
  each = f'{counts[0]} episodes' + (' each' if len(results) > 1 else '') if len(counts) == 1 else (
      'episodes ' + '/'.join(str(len(r)) for r in results.values()))
  return f'eval at {step} env steps: ' + ' · '.join(parts) + f' ({each})'


def end_of_run(logdir):
  """The run's closing lines: its logdir, the final and best test return (all sensors), its
  wall time (the logged windows' sum), and the commands that come next."""
  rows = logger_lib.records(logdir)
  tests = [(r['step'], r['test/return_none']) for r in rows if 'test/return_none' in r]
  tests = tests or [(r['step'], r['test/return']) for r in rows if 'test/return' in r]
  seconds = sum(r.get('time/wall', 0.0) for r in rows)
  took = f'{seconds / 60:.0f} min' if seconds >= 90 else f'{seconds:.0f} s'
  lines = [f'run finished: {logdir}, {took} of logged wall time']
  if tests:
    (last_step, last), (best_step, best) = tests[-1], max(tests, key=lambda t: t[1])
    lines.append(f'test return (all sensors): final {last:.1f} at {last_step} env steps, best '
                 f'{best:.1f} at {best_step}')
  lines += [
      'next:', f'  .venv/bin/tensorboard --logdir {logdir}',
      f'  make eval LOGDIR={logdir}     # the newest checkpoint, 10 episodes per missing level',
      f'  make export LOGDIR={logdir}', f'  make plot LOGDIR={logdir}'
  ]
  return '\n'.join(lines)
