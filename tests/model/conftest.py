"""One seed for every model test (gin and the Keras policy are reset by tests/conftest.py);
shared data lives in model_helpers.py."""
import pytest
import tf_keras as keras


@pytest.fixture(autouse=True)
def seeded():
  """Initialisers and samples: the same numbers whatever ran before.  Keras draws an
  unseeded initialiser's seed from Python's ``random``, so ``tf.random.set_seed`` alone
  left every weight to the earlier tests (a tiny model's ReLU expert can die at some
  seeds: CI, stop 28)."""
  keras.utils.set_random_seed(0)
