"""The commands: each module a ``main(argv=None) -> exit code`` run as ``python -m
mummi_tf.cli.<name>`` and installed as a ``mummi-<name>`` console script (``make`` calls them).
Bad input gets one line and exit 2. They set up what every command shares before TensorFlow
loads (this module imports none)."""
import logging
import os
import sys
import tempfile


def _not_gin_include_noise(record):
  """gin's package-path reader logs an error for every include that it then finds on the
  search path (`include 'agent.gin'`): noise, not an error."""
  return not str(record.msg).startswith('Path not found: ')


def import_tensorflow_quietly():
  """Imports TensorFlow (and TFP, tf-keras) with its start-up lines held back: the C++
  banner (oneDNN, CUDA stubs) is printed before ``TF_CPP_MIN_LOG_LEVEL`` can act. The
  held lines are shown if the import fails."""
  logging.getLogger().addFilter(_not_gin_include_noise)  # once: filters are a set
  if 'tensorflow' in sys.modules:
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    try:
      import tensorflow  # noqa: F401
      import tensorflow_probability  # noqa: F401
      import tf_keras  # noqa: F401
    except BaseException:
      os.dup2(saved, 2)
      held.seek(0)
      sys.stderr.write(held.read().decode(errors='replace'))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
