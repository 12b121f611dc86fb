"""Every test starts from an empty gin config and the float32 Keras policy."""
import sys

import gin
import pytest


@pytest.fixture(autouse=True)
def _reset_global_config():
  yield
  gin.clear_config()
  if 'tf_keras' in sys.modules:  # Trainer sets the mixed-precision policy globally.
    sys.modules['tf_keras'].mixed_precision.set_global_policy('float32')
