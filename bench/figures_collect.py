"""Figure 8: the collection cost of the training policy against the env's.

Every agent step of collection calls the policy (encoders, PoE, MSSM filter, actor; with
latent-guided MPC also an imagined `mpc_horizon`-step rollout and its gradient) before the
env workers step. The trainer runs updates while the workers step, but not the policy, so
the policy's time adds to every agent step; the goal keeps it below the env's. Per
configuration (paper dims: gin `mummi`; `gin/small.gin` dims: `mummi small`):

* `collect/policy_mpc[_small]`: `Agent.policy(obs, state, training=True)` with MPC, as the
  driver calls it (`bench.policy_probe`: batch = envs = 1, numpy in, numpy out), ms per
  agent step, against the env's ms per agent step in a worker process (`make(process=True)`,
  what the driver waits for; with the configuration's shadows), measured in the same run in
  a TF-free `bench.env_probe`; goal ratio <= 1. Its notes add MPC at half the horizon and,
  from the three times, what would meet the goal (MPC every k steps, a shorter horizon);
* `collect/policy[_small]`: the same without MPC, same baseline, reported;
* `collect/policy_mpc_xla[_small]`: with the MPC action (actor + rollout + gradient)
  XLA-compiled (`Agent.jit_policy`, on in `gin/agent.gin`; the encoders and experts stay in the
  graph), same baseline and goal, and `speedup` over the all-graph MPC policy's.
"""
import math

from bench import figures_env
from bench import report
from bench import runner

TASK = 'walker_stand'
UNIT = 'ms/agent step'
GOAL = ('ratio_max', 1.0)
CONFIGS = {'paper': ('mummi',), 'small': ('mummi', 'small')}
SMOKE_CONFIGS = {'tiny': ('mummi', 'tiny')}
# probe result key -> figure name stem; the XLA variant sets Agent.jit_policy.
VARIANTS = {'mpc': 'policy_mpc', 'plain': 'policy', 'mpc_xla': 'policy_mpc_xla'}


def probe(gin_files, opts, timeout):
  args = [
      '-m', 'bench.policy_probe', '--batch', opts['batch'], '--calls', opts['calls'], '--repeats',
      opts['repeats']
  ]
  for name in gin_files:
    args += ['--gin_file', name]
  results, error = runner.run(args, timeout)
  if results and 'error' not in results[0]:
    return results[0]
  return {'error': (results[0]['error'] if results else error) or 'no result'}


def figures(opts, timeout):
  """Entries of CONFIGS (SMOKE_CONFIGS with opts['tiny']); opts: batch, calls, env_steps,
  repeats."""
  out, envs = {}, {}
  for label, gin_files in (SMOKE_CONFIGS if opts['tiny'] else CONFIGS).items():
    suffix = '' if label in ('paper', 'tiny') else f'_{label}'
    names = {kind: f'collect/{stem}{suffix}' for kind, stem in VARIANTS.items()}
    r = probe(gin_files, opts, timeout)
    if 'error' in r:
      out.update({
          name: report.failed(name, UNIT, GOAL if kind.startswith('mpc') else None, r['error'])
          for kind, name in names.items()
      })
      continue
    if r['shadows'] not in envs:  # one env probe per shadows setting
      envs[r['shadows']] = figures_env.measure([TASK], opts['env_steps'], opts['repeats'], timeout,
                                               r['shadows'])[TASK]
    out.update(entries(names, label, r, envs[r['shadows']]))
  return out


def entries(names, label, r, env):
  """The MPC and plain entries (graph and XLA) of one configuration's probe result `r`."""
  ok = 'error' not in env
  baseline = dict(baseline=env['worker'][0], baseline_min=env['worker'][1],
                  baseline_max=env['worker'][2], baseline_repeats=env['repeats']) if ok else {}
  env_note = (f'baseline: {TASK} env step in a worker process (shadows '
              f'{"on" if r["shadows"] else "off"}), TF-free subprocess of this run'
              if ok else f'env not measured: {env["error"]}')
  extra = dict(batch=r['batch'], precision=r['precision'], sizes=r['sizes'], params=r['params'],
               shadows=r['shadows'], gin_files=r['gin_files'])
  mpc = report.figure(names['mpc'], r['mpc'], UNIT, goal=GOAL,
                      notes=f'{describe(label, r, "mpc")}; {env_note}', trace_s=r['first_s']['mpc'],
                      mpc_horizon=r['mpc_horizon'], **baseline, **extra)
  plain = report.figure(names['plain'], r['plain'], UNIT,
                        notes=f'{describe(label, r, "plain")}; {env_note}',
                        trace_s=r['first_s']['plain'], **baseline, **extra)
  xla = report.figure(names['mpc_xla'], r['mpc_xla'], UNIT, goal=GOAL,
                      trace_s=r['first_s']['mpc_xla'], **baseline, **extra)
  xla['speedup'] = mpc['value'] / xla['value']
  xla['notes'] = (f'{describe(label, r, "mpc_xla")}; {xla["speedup"]:.2f}x the speed of '
                  f'{mpc["name"]}; {env_note}')
  short = report.stats(r['mpc_short'])[0]
  mpc.update(mpc_extra_ms=mpc['value'] - plain['value'], mpc_short_ms=short,
             mpc_short_samples=r['mpc_short'], mpc_short_horizon=r['mpc_short_horizon'])
  mpc['notes'] += f'; MPC at horizon {r["mpc_short_horizon"]}: {short:.3g} ms'
  if ok:
    cost = mpc_cost(mpc['value'], short, plain['value'], r['mpc_horizon'], r['mpc_short_horizon'])
    mpc['notes'] += '; ' + what_it_takes(mpc['value'], plain['value'], env['worker'][0], cost)
  return {names['mpc']: mpc, names['plain']: plain, names['mpc_xla']: xla}


def mpc_cost(mpc, short, plain, horizon, short_horizon):
  """(fixed ms, ms per imagined step) of MPC, a line through its two measured horizons;
  None when they do not give a positive slope (noise, or equal horizons)."""
  if horizon == short_horizon or mpc <= short:
    return None
  per_step = (mpc - short) / (horizon - short_horizon)
  return max(0.0, mpc - plain - per_step * horizon), per_step  # < 0 is noise


def describe(label, r, kind):
  """The notes' description of the probe's `kind` (a VARIANTS key)."""
  sizes, with_mpc = r['sizes'], kind.startswith('mpc')
  dims = {
      'paper': 'paper dims',
      'small': 'gin/small.gin dims',
      'tiny': 'tiny dims (smoke)'
  }.get(label, label)
  what = (f'with latent-guided MPC ({r["mpc_horizon"]}-step imagined rollout + its gradient)'
          if with_mpc else 'without MPC')
  what += (', the action XLA-compiled (Agent.jit_policy: actor + MPC)'
           if kind.endswith('_xla') else ', all in the graph (Agent.jit_policy = False)')
  return (f'Agent.policy(training=True) {what}, as the driver calls it (numpy in, numpy out, '
          f'state fed back), batch {r["batch"]}, {dims} (h {sizes["deter"]}, s^c '
          f'{sizes["stoch"]}, s^f {sizes["fused"]}, cnn depth {sizes["cnn_depth"]}), gin '
          f'{"+".join(r["gin_files"])}, {r["precision"]}, untrained; mean of {r["calls"]} '
          'consecutive calls per repeat, MPC, MPC at half the horizon, plain and MPC with XLA '
          f'interleaved; first call (trace) {r["first_s"][kind]:.1f} s excluded')


def what_it_takes(mpc, plain, env, cost):
  """One clause: the goal met with its headroom, or what would meet it (estimates from
  the measured times; `cost`: `mpc_cost`'s line or None)."""
  extra = mpc - plain
  if mpc <= env:
    return (f'goal met: MPC adds {extra:.3g} ms per agent step, {env - mpc:.3g} ms below the '
            'env step')
  if plain >= env:
    return (f'goal not met, and the policy without MPC ({plain:.3g} ms) alone exceeds the env '
            'step: only a cheaper filter/actor or batching several envs per call would do')
  every = math.ceil(extra / (env - plain))
  horizon_note = 'a shorter horizon (no estimate: the two horizons\' times do not fit a line)'
  if cost is not None:
    fixed, per_step = cost
    shorter = math.floor((env - plain - fixed) / per_step)
    horizon_note = (f'a horizon <= {shorter}' if shorter >= 1 else 'no horizon') + (
        f' (MPC costs {fixed:.3g} ms + {per_step:.3g} ms per imagined step here)')
  return (f'goal not met: MPC adds {extra:.3g} ms per agent step; it would fit with MPC '
          f'every {every} agent steps (the actor\'s action between), or {horizon_note}, or '
          'several envs per policy call (batching; not measured here)')
