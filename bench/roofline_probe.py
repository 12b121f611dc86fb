"""The roofline probe: FLOPs and time of `Agent.train` and of its parts, beside the machine's
dense matmul throughput, run as `python -m bench.roofline_probe` (one configuration per fresh
process: the Keras precision policy is global).

    python -m bench.roofline_probe --method mummi --precision float32 \
        --batch 16 --length 50 --warmup 2 --repeats 5 --matmul 2048 [--tiny]

FLOPs: `bench.flops` on each traced graph (dense ops, loop bodies times their trip count).
Time: each repeat times, one after the other so that they share the machine's load, a
float32 and a bfloat16 `tf.matmul` of two `--matmul`-square matrices (the peak), one whole
update, and each part's forward and backward as its own `tf.function` on the tensors the
update computes (`part_functions`): gradients with unit cotangents to the same variables
and inputs the update differentiates. The first call of each function (tracing) and
`warmup - 1` more are not timed. Prints `RESULT {...}` (see `measure`).
"""
import argparse
import time

import numpy as np
import tensorflow as tf

from bench import flops
from bench import runner
from bench import update_probe
from mummi_tf.model import fusion as fusion_lib
from mummi_tf.model import methods as methods_lib
from mummi_tf.model import mssm as mssm_lib
from mummi_tf.model import objectives

PEAK_DTYPES = ('float32', 'bfloat16')


def peak_function(size, dtype):
  """(tf.function, args): one size x size x size matmul of `dtype` (the whole product is
  returned, so that no part of it can be pruned)."""
  rng = np.random.default_rng(0)
  a, b = (tf.cast(rng.standard_normal((size, size), np.float32), dtype) for _ in range(2))
  return tf.function(tf.matmul), (a, b)


def variables(*modules):
  """The trainable variables of `modules` (layers or tf.Modules), no duplicates."""
  out, seen = [], set()
  for module in modules:
    for v in module.trainable_variables:
      if id(v) not in seen:
        seen.add(id(v))
        out.append(v)
  return out


def backward(fn, sources):
  """A tf.function(diff, fixed): `fn(diff, fixed)`'s outputs and their gradients, unit
  cotangents, with respect to the variables `sources` and the tensors of `diff`."""
  @tf.function
  def run(diff, fixed):
    inputs = tf.nest.flatten(diff)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      outs = tf.nest.flatten(fn(diff, fixed))
    grads = tape.gradient(outs, list(sources) + inputs, [tf.ones_like(o) for o in outs])
    return outs + [g for g in grads if g is not None]  # the outputs too: all of it runs

  return run


def fuse(model, diff, flags):
  """(s^f, mean, std) from the experts' statistics or the embeddings, as `MSSM.encode`."""
  names = model.names
  if model.fusion == 'concat':
    sf = tf.concat([tf.cast(diff['embeds'][m], tf.float32) * flags[m][..., None] for m in names],
                   -1)
    return sf, None, None
  fuse_fn = (
      fusion_lib.product_of_experts if model.fusion == 'poe' else fusion_lib.reference_fusion)
  mean, std = fuse_fn([diff['means'][m] for m in names], [diff['stds'][m] for m in names],
                      [flags[m] for m in names])
  return mean, mean, std


def heads_part(agent, enc):
  """Fusion and the method's heads (InfoNCE or decoders): (fn, sources, diff)."""
  wm = agent.world_model
  decoders = isinstance(wm.heads, methods_lib.DecoderHeads)

  def fn(diff, fixed):
    sf, mean, std = fuse(wm.mssm, diff, fixed['flags'])
    code = mssm_lib.Encoding(sf, diff.get('embeds'), fixed['flags'], diff.get('means'),
                             diff.get('stds'), mean, std)
    args = (code, diff['feat'], fixed['data']) if decoders else (code, diff['feat'])
    return [sf, wm.heads.loss(*args, {})]

  diff = {'embeds': enc.embeds} if enc.means is None else {'means': enc.means, 'stds': enc.stds}
  return fn, variables(wm.heads), diff, 'fusion_decoders' if decoders else 'fusion_infonce'


def world_model_parts(agent, data):
  """{part: (fn, sources, diff, fixed)} of the world model's loss, and its posteriors."""
  wm = agent.world_model
  model, names = wm.mssm, wm.mssm.names
  enc = model.encode(data)
  post, _ = model.observe(enc.sf, data['action'], data['is_first'])

  def encoders(diff, fixed):
    return [model.encoders[m](model.encoder_input(m, fixed[m])) for m in names]

  def experts(diff, fixed):
    return [model.experts[m](diff[m]) for m in names]

  def observe(diff, fixed):
    post, prior = model.observe(diff['sf'], fixed['action'], fixed['is_first'])
    z = wm.feat(post)
    kl, _ = objectives.kl_loss(post, prior)
    return [z, kl, tf.reduce_mean(wm.reward(z).log_prob(fixed['reward']))]

  taken = variables(*model.encoders.values())
  parts = {'encoders': (encoders, taken, {}, {m: data[m] for m in names})}
  if enc.means is not None:
    parts['experts'] = (experts, variables(*model.experts.values()), dict(enc.embeds), {})
    taken = taken + parts['experts'][1]  # a new list: the encoders keep theirs
  fn, sources, diff, label = heads_part(agent, enc)
  parts[label] = (fn, sources, dict(diff, feat=wm.feat(post)), {'flags': enc.flags, 'data': data})
  taken = {id(v) for v in taken + sources}
  rest = [v for v in wm.model_variables if id(v) not in taken]  # RSSM, reward head
  fixed = {k: data[k] for k in ('action', 'is_first', 'reward')}
  parts['observe'] = (observe, rest, {'sf': enc.sf}, fixed)
  return parts, post


def behaviour_parts(agent, post):
  """{part: (fn, sources, diff, fixed)} of the actor's and the value's losses."""
  wm, ac = agent.world_model, agent.behavior
  start = ac.start_states(post)
  imagined, _ = ac.rollout(wm, start)

  def imagination(diff, fixed):
    feat, entropy = ac.rollout(wm, fixed['start'])
    outs = [ac.reward_mode(wm, feat), (ac.target_value or ac.value)(feat)]
    return outs + ([entropy] if entropy is not None else [])

  def actor_value(diff, fixed):
    return [ac.value(fixed['feat'][:-1])]

  actor = variables(ac.actor)
  return {
      'imagination': (imagination, actor, {}, {
          'start': start
      }),
      'actor_value': (actor_value, variables(ac.value), {}, {
          'feat': imagined
      })
  }


def part_functions(agent, data):
  """{part: (tf.function, args)}: each part's forward + backward on the update's tensors.

  encoders: the conv and MLP encoders (no input gradient); experts: q(s^f | x^m) per
  modality; fusion_infonce / fusion_decoders: PoE or concatenation, then the method's heads
  (InfoNCE with g(z), or the decoders); observe: the RSSM scan over T, KL and reward head;
  imagination: the H-step rollout from every posterior with the actor (and its entropy
  bonus), the reward and target-value heads on it, backward to the actor (the actor loss);
  actor_value: the value loss. Not in a part: the three optimisers (clipping, Adam),
  the lambda-returns and the metrics.
  """
  parts, post = world_model_parts(agent, data)
  parts.update(behaviour_parts(agent, post))
  return {
      name: (backward(fn, sources), (diff, fixed))
      for name, (fn, sources, diff, fixed) in parts.items()
  }


def timer(fn, args):
  """A callable: seconds of one call of fn(*args)."""
  def call():
    start = time.perf_counter()
    fn(*args)  # eager calls are synchronous: it returns once the step ran
    return time.perf_counter() - start

  return call


def count(fn, args):
  c = flops.count(fn, *args)
  if c.unknown:
    raise ValueError(f'FLOPs: ops with unknown shapes: {c.unknown[:5]}')
  return {'flops': c.flops, 'by_dtype': c.by_dtype(), 'median_width': c.median_width()}


def measure(method, precision, batch, length, warmup, repeats, size, tiny=False):
  """Builds the agent, counts and times the update, its parts and the matmul peaks.

  Returns {'method', 'policy', 'batch', 'length', 'matmul', 'params', 'peaks': {dtype:
  [GFLOP/s]}, 'update': {'flops', 'by_dtype', 'median_width', 'times'}, 'parts': {part:
  likewise}}.
  """
  agent, policy = update_probe.build_agent(method, precision, tiny)
  data = {k: tf.constant(v) for k, v in update_probe.random_batch(batch, length).items()}
  functions = {'update': (agent.train, (data,))}
  functions.update(part_functions(agent, data))
  peaks = {dtype: peak_function(size, dtype) for dtype in PEAK_DTYPES}
  result = {name: count(fn, args) for name, (fn, args) in functions.items()}
  timers = {k: timer(fn, args) for k, (fn, args) in {**peaks, **functions}.items()}
  for _ in range(max(1, warmup)):
    for call in timers.values():
      call()
  times = {k: [] for k in timers}
  for _ in range(repeats):
    for k, call in timers.items():
      times[k].append(call())
  for k in functions:
    result[k]['times'] = times[k]
  return {
      'method': method,
      'policy': policy,
      'batch': batch,
      'length': length,
      'matmul': size,
      'params': sum(int(np.prod(v.shape)) for v in agent.trainable_variables),
      'peaks': {
          d: [2 * size**3 / t / 1e9 for t in times[d]] for d in PEAK_DTYPES
      },
      'update': result.pop('update'),
      'parts': result
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--method', required=True)
  parser.add_argument('--precision', default='float32')
  parser.add_argument('--batch', type=int, default=16, help='sequences')
  parser.add_argument('--length', type=int, default=50, help='steps per sequence')
  parser.add_argument('--warmup', type=int, default=2, help='untimed calls, the first included')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--matmul', type=int, default=2048, help='side of the peak matmul')
  parser.add_argument('--tiny', action='store_true', help='tiny model sizes (smoke mode)')
  args = parser.parse_args(argv)
  runner.emit(
      lambda: measure(args.method, args.precision, args.batch, args.length, args.warmup, args.
                      repeats, args.matmul, args.tiny), method=args.method, policy=args.precision)


if __name__ == '__main__':
  main()
