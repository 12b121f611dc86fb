#!/usr/bin/env python
"""What the behaviour learner sees, from a logdir's latest checkpoint and its replay.

    mummi-diagnose --logdir runs/walker_stand-mummi [--batch 16] [--length 50]

Prints one JSON object (see ``mummi_tf.model.diagnostics.behaviour``): the actor's pre-tanh
mean and std and how often its samples saturate, the actor's gradient, the value and
reward on posterior vs imagined states, and how far imagination drifts from the
posterior states the value was trained near (feature z-scores). Read it beside the
run's ``metrics.jsonl`` when a curve stalls or a value grows.
"""
import argparse
import json
import pathlib
import sys


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--logdir', required=True, type=pathlib.Path)
  parser.add_argument('--batch', type=int, default=16, help='sequences from replay')
  parser.add_argument('--length', type=int, default=50, help='agent steps per sequence')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--checkpoint', default=None,
                      help='a checkpoint prefix (default: the latest of LOGDIR)')
  args = parser.parse_args(argv)
  if not (args.logdir / 'run.json').exists():
    print(f'diagnose: error: {args.logdir} holds no run (no run.json)', file=sys.stderr)
    return 2
  from mummi_tf.cli import import_tensorflow_quietly
  import_tensorflow_quietly()
  import tensorflow as tf
  from mummi_tf.model import diagnostics
  from mummi_tf.run import export
  from mummi_tf.run import replay as replay_lib
  try:
    agent, _, _, step = export.restored_agent(args.logdir, args.checkpoint)
  except export.ExportError as e:
    print(f'diagnose: error: {e}', file=sys.stderr)
    return 2
  tf.random.set_seed(args.seed)
  replay = replay_lib.Replay(args.logdir / 'episodes', seed=args.seed)
  batch = replay.sample(args.batch, args.length)
  batch = {k: v for k, v in batch.items() if v.dtype != object}
  result = {
      'checkpoint_step': step,
      **diagnostics.behaviour(agent, batch),
      **diagnostics.openloop(agent, batch)
  }
  print(json.dumps({k: round(float(v), 4) for k, v in result.items()}, indent=1))
  return 0


if __name__ == '__main__':
  sys.exit(main())
