"""Export the trained policy of a logdir as a TF-only SavedModel (``make export``).

    python -m mummi_tf.cli.export --logdir LOGDIR [--out DIR] [--mpc | --no_mpc]
        [--stochastic] [--force] [--tflite [int8|float16|none]]

The signatures are ``mummi_tf/run/export.py``'s; ``--tflite`` (with ``--no_mpc``) also writes
``DIR/policy.tflite`` (``mummi_tf/run/export_tflite.py``); exit 2 on a usage error.
"""
import argparse
import pathlib
import sys

from mummi_tf.cli import import_tensorflow_quietly


def main(argv=None):
  """``make export``; returns 0, or 2 on a usage error."""
  parser = argparse.ArgumentParser(
      description='Export the trained MuMMI policy of a logdir as a SavedModel.')
  parser.add_argument('--logdir', required=True, help='training logdir')
  parser.add_argument('--out', default=None, help='output folder (default: LOGDIR/savedmodel)')
  group = parser.add_mutually_exclusive_group()
  group.add_argument('--mpc', dest='mpc', action='store_true', default=None,
                     help='latent-guided MPC on (default: as trained)')
  group.add_argument('--no_mpc', '--no-mpc', dest='mpc', action='store_false')
  parser.add_argument('--stochastic', action='store_true',
                      help='sample latent and action (default: deterministic)')
  parser.add_argument('--force', action='store_true', help='overwrite an existing --out')
  parser.add_argument(
      '--tflite', nargs='?', const='int8', default=None, metavar='{int8,float16,none}',
      help='also write OUT/policy.tflite (TFLite builtins) with int8 (default), float16 or '
      'float32 weights; needs --no_mpc')
  args = parser.parse_args(argv)
  import_tensorflow_quietly()  # no C++ start-up banner (oneDNN, CUDA stubs)
  from mummi_tf.run import export as export_lib
  try:
    meta = export_lib.export(args.logdir, args.out, args.mpc, args.stochastic, args.force,
                             args.tflite)
  except export_lib.ExportError as e:
    print(f'export_savedmodel: error: {e}', file=sys.stderr)
    return 2
  out = args.out or str(pathlib.Path(args.logdir) / 'savedmodel')
  print(f'exported {meta["task"]} ({meta["method"]}, step '
        f'{meta["checkpoint_step"]}, mpc={meta["mpc"]}, '
        f'stochastic={meta["stochastic"]}) to {out}')
  if meta['tflite']:
    print(f'and {out}/{meta["tflite"]["file"]} ({meta["tflite"]["quantize"]} weights, '
          f'{meta["tflite"]["bytes"]} bytes)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
