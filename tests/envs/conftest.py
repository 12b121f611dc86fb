"""Fixtures for the environment tests; `run_isolated` lives in envs_helpers.py (re-exported
here because test_robosuite_wipe.py imports it from conftest)."""
import gin
import pytest

from envs_helpers import ROOT, run_isolated  # noqa: F401


@pytest.fixture
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()
