"""Every test starts from one seed, an empty gin config and the float32 Keras policy;
``load_tool('plot')`` is the command module ``mummi_tf.cli.plot``."""
import importlib
import random
import sys

import gin
import pytest


@pytest.fixture(autouse=True)
def _reset_global_config():
  """Seeds first: Keras draws an unseeded initialiser's seed from Python's ``random``, so
  without it a test's weights depend on the tests that ran before it (CI, stop 28: a tiny
  model's ReLU expert died at another order's seed).  TF is not imported here (a process
  that imports it cannot render with Mesa); a test module that needs it has imported it."""
  random.seed(0)
  if 'tf_keras' in sys.modules:
    sys.modules['tf_keras'].utils.set_random_seed(0)
  yield
  gin.clear_config()
  if 'tf_keras' in sys.modules:  # Trainer sets the mixed-precision policy globally.
    sys.modules['tf_keras'].mixed_precision.set_global_policy('float32')


@pytest.fixture(scope='session')
def load_tool():
  """``load_tool('plot')`` -> the command module ``mummi_tf.cli.plot``."""
  return lambda name: importlib.import_module(f'mummi_tf.cli.{name}')
