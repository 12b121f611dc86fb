#!/usr/bin/env python
"""Export the trained policy of a logdir as a TF-only SavedModel.

    python tools/export_savedmodel.py --logdir LOGDIR [--out DIR] [--mpc | --no_mpc]
        [--stochastic] [--force] [--tflite [int8|float16|none]]

See ``mummi_tf/export.py`` for the signatures; ``--tflite`` (with ``--no_mpc``) also writes
``DIR/policy.tflite`` (``mummi_tf/export_tflite.py``); exit 2 on a usage error.
"""
import sys

from mummi_tf import train

if __name__ == '__main__':
  train.import_tensorflow_quietly()  # no C++ start-up banner (oneDNN, CUDA stubs)
  from mummi_tf import export
  sys.exit(export.main())
