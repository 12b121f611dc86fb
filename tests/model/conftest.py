"""A fixed TF seed for every model test (gin and the Keras policy are reset by
tests/conftest.py); shared data lives in model_helpers.py."""
import pytest
import tensorflow as tf


@pytest.fixture(autouse=True)
def seeded():
  """Initialisers and samples: reproducible test runs (gin and the Keras policy are reset
  by tests/conftest.py)."""
  tf.random.set_seed(0)
