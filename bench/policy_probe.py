"""Times the training-time collection policy, run as `python -m bench.policy_probe`.

`Agent.policy(obs, state, training=True)` as the trainer's driver calls it: numpy
observations of `--batch` envs in, numpy actions out (`.numpy()`, so each call is waited
for), the policy state fed back. Five agents of one configuration: with latent-guided MPC,
with MPC at half its horizon (what a shorter one would save), without MPC
(`ActorCritic.mpc`, `ActorCritic.mpc_horizon`), all three in the graph, and with MPC with the
action XLA-compiled (`Agent.jit_policy`: actor + MPC), their calls interleaved per repeat. The
configuration is a real run's (`mummi_tf.cli.train.configure`: the task family's gin file, then
the `--gin_file`s and `--gin_binding`s), so the precision ('auto': mixed_bfloat16 on a CPU)
and the sizes are too.

    python -m bench.policy_probe --gin_file mummi [--gin_file small] [--gin_binding B] \
        [--batch 1] [--calls 50] [--repeats 5]

Prints `RESULT {"mpc": [ms per call, one per repeat], "mpc_short": [...], "plain": [...],
"mpc_xla": [...],
"first_s": {...}, "shadows": ..., ...}`; `shadows` is the configuration's
`mummi_tf.envs.dmc.load.shadows`, so that the harness times the env it would train with.
"""
import argparse
import inspect
import time

import gin
import numpy as np

from bench import runner
from bench import update_probe

TASK = 'walker_stand'  # the spec of update_probe.obs_spec (rgb, depth, touch (2,)), 6 actions


def configure(gin_files, bindings, mpc):
  """The trainer's gin configuration of `gin_files` and `bindings`, with MPC on or off."""
  from mummi_tf.cli import train
  args = ['--task', TASK, '--logdir', '/nonexistent/policy_probe']
  for name in gin_files:
    args += ['--gin_file', name]
  for binding in list(bindings) + [f'ActorCritic.mpc = {mpc}']:
    args += ['--gin_binding', binding]
  train.configure(train.parse_args(args))


def build_agent(gin_files, bindings, mpc):
  """A fresh untrained Agent of the configuration; (agent, precision policy name)."""
  from mummi_tf.model import agent as agent_lib
  from mummi_tf.model import precision
  configure(gin_files, bindings, mpc)
  name = precision.set_policy()
  return agent_lib.Agent(update_probe.obs_spec(), update_probe.action_spec()), name


def observations(batch, count=8, seed=0):
  """`count` batched observations as the driver builds them (every sensor present)."""
  rng = np.random.default_rng(seed)
  result = []
  for _ in range(count):
    obs = {}
    for name, spec in update_probe.obs_spec().items():
      shape = (batch,) + spec.shape
      if name.endswith('_flag'):
        obs[name] = np.ones(shape, np.float32)
      elif spec.dtype == np.uint8:
        obs[name] = rng.integers(0, 256, shape, np.uint8)
      else:
        obs[name] = rng.normal(size=shape).astype(np.float32)
    obs['is_first'] = np.zeros(batch, bool)
    result.append(obs)
  return result


def stepper(agent, inputs):
  """One collection step per call: the policy on the next observation, state fed back."""
  state, index = [None], [0]

  def call():
    obs = inputs[index[0] % len(inputs)]
    index[0] += 1
    action, state[0] = agent.policy(obs, state[0], training=True)
    np.asarray(action.numpy(), np.float32)

  return call


def _first_call_s(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def bound(name, default_of=None):
  """A gin parameter's value in the current configuration, else its default."""
  try:
    return gin.query_parameter(name)
  except ValueError:
    if default_of is None:
      return None
    return inspect.signature(default_of).parameters[name.split('.')[-1]].default


def describe():
  """Sizes and env options of the current configuration (for the figure's notes)."""
  from mummi_tf.model import world_model
  sizes = {
      k: bound(f'WorldModel.{k}', world_model.WorldModel)
      for k in ('deter', 'stoch', 'fused', 'cnn_depth')
  }
  shadows = bound('mummi_tf.envs.dmc.load.shadows')
  return {'sizes': sizes, 'shadows': True if shadows is None else bool(shadows)}


def build_agents(gin_files, bindings):
  """{'mpc', 'mpc_short' (half the MPC horizon, >= 2), 'plain'} agents in the graph and
  'mpc_xla' with the MPC action XLA-compiled, the precision policy and the
  configuration's description (horizons included)."""
  agents = {}
  graph, xla = (list(bindings) + [f'Agent.jit_policy = {on}'] for on in (False, True))
  agents['mpc'], policy = build_agent(gin_files, graph, True)
  info = describe()
  horizon = agents['mpc'].behavior.mpc_horizon
  info.update(mpc_horizon=horizon, mpc_short_horizon=max(2, horizon // 2))  # ActorCritic: >= 2
  short = graph + [f'ActorCritic.mpc_horizon = {info["mpc_short_horizon"]}']
  agents['mpc_short'], _ = build_agent(gin_files, short, True)
  agents['plain'], _ = build_agent(gin_files, graph, False)
  agents['mpc_xla'], _ = build_agent(gin_files, xla, True)
  return agents, policy, info


def time_policies(gin_files, bindings, batch, calls, repeats):
  from bench.figures_export import _interleaved
  agents, policy, info = build_agents(gin_files, bindings)
  inputs = observations(batch)
  fns = {label: stepper(agent, inputs) for label, agent in agents.items()}
  first = {label: _first_call_s(fn) for label, fn in fns.items()}
  samples = _interleaved(fns, calls, repeats)
  params = sum(int(np.prod(v.shape)) for v in agents['mpc'].trainable_variables)
  return {
      'gin_files': list(gin_files),
      'bindings': list(bindings),
      'batch': batch,
      'calls': calls,
      'precision': policy,
      'first_s': first,
      'params': params,
      **info,
      **samples
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--gin_file', action='append', default=[],
                      help='gin files after the task family file (default: mummi)')
  parser.add_argument('--gin_binding', action='append', default=[], help='after the files')
  parser.add_argument('--batch', type=int, default=1, help='envs per policy call')
  parser.add_argument('--calls', type=int, default=50, help='timed calls per repeat')
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args(argv)
  gin_files = args.gin_file or ['mummi']
  runner.emit(
      lambda: time_policies(gin_files, args.gin_binding, args.batch, args.calls, args.repeats),
      gin_files=gin_files)


if __name__ == '__main__':
  main()
