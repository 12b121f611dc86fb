"""Figures 1 and 4: env ms per agent step vs a bare dm_control render step, and the
worker-process overhead (both from one TF-free `bench.env_probe` run per task)."""
import statistics

from bench import report
from bench import runner

DMC_TASKS = ('walker_stand', 'walker_walk', 'walker_run', 'finger_spin', 'cup_catch')
ENV_GOAL = ('ratio_max', 1.2)
WORKER_GOAL = ('ratio_max', 1.1)
UNIT = 'ms/agent step'


def measure(tasks, steps, repeats, timeout, shadows=True):
  """{task: probe result} for `tasks` (Natural MuJoCo and/or 'table_wiping')."""
  results, error = runner.run(['-m', 'bench.env_probe', '--steps', steps, '--repeats', repeats] +
                              ([] if shadows else ['--no_shadows']) + list(tasks), timeout)
  found = {r['task']: r for r in results}
  for task in tasks:
    found.setdefault(task, {'task': task, 'error': error or 'no result'})
  return found


def _summary(triple, repeats):
  median, lo, hi = triple
  return median, lo, hi, repeats


def env_figures(probe):
  out = {}
  for task, r in probe.items():
    name = f'env/{task}'
    if 'error' in r:
      out[name] = report.failed(name, UNIT, ENV_GOAL, r['error'])
    elif task == 'table_wiping':
      out[name] = _table_wiping(name, r)
    else:
      out[name] = report.figure(
          name, None, UNIT, summary=_summary(r['in_process'],
                                             r['repeats']), baseline=r['bare'][0], goal=ENV_GOAL,
          notes='our env in this process (rgb + depth + touch, photo background, shadows, '
          'missing-sensor wrappers; action repeat 2) vs the stock suite task doing 2 '
          'physics steps + one physics.render RGB at 64x64; same process, repeats '
          f'interleaved; bare min-max {r["bare"][1]:.3g}-{r["bare"][2]:.3g} ms',
          baseline_min=r['bare'][1], baseline_max=r['bare'][2], baseline_repeats=r['repeats'])
  return out


def _table_wiping(name, r):
  runs = r['runs']
  med = {
      k: statistics.median(run[k] for run in runs)
      for k in ('physics_ms', 'render_ms', 'bookkeeping_ms', 'cpu_step_ms', 'reset_ms')
  }
  # robosuite_wipe.benchmark times the raw env (one control step); an agent step is 2.
  return report.figure(
      name, [2 * run['step_ms'] for run in runs], UNIT, baseline_samples=[
          2 * (run['physics_ms'] + run['render_ms']) for run in runs
      ], goal=ENV_GOAL,
      notes='robosuite Wipe, both cameras, via robosuite_wipe.benchmark (2 control steps = '
      'one agent step); baseline = the MjSim physics + render calls alone. Breakdown '
      f'per control step (median): physics {med["physics_ms"]:.3g} ms, render '
      f'{med["render_ms"]:.3g} ms, robosuite + adapter bookkeeping '
      f'{med["bookkeeping_ms"]:.3g} ms, CPU time {med["cpu_step_ms"]:.3g} ms, reset '
      f'{med["reset_ms"]:.3g} ms', breakdown_ms_per_control_step=med)


def worker_figures(probe):
  out = {}
  for task, r in probe.items():
    if task == 'table_wiping':
      continue
    name = f'worker/{task}'
    if 'error' in r:
      out[name] = report.failed(name, UNIT, WORKER_GOAL, r['error'])
      continue
    out[name] = report.figure(
        name, None, UNIT, summary=_summary(
            r['worker'], r['repeats']), baseline=r['in_process'][0], goal=WORKER_GOAL,
        notes='make(process=True) (TF-free worker, shared-memory observations) vs '
        'make(process=False), both in a TF-free process, repeats interleaved',
        baseline_min=r['in_process'][1], baseline_max=r['in_process'][2],
        baseline_repeats=r['repeats'])
  return out
