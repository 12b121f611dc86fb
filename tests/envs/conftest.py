"""Fixtures for the environment tests; `run_isolated` lives in envs_helpers.py (re-exported
here because test_robosuite_wipe.py imports it from conftest). gin is cleared after every
test by tests/conftest.py."""
from envs_helpers import ROOT, run_isolated  # noqa: F401
