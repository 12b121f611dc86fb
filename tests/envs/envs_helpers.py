"""Helpers for the environment tests.

Rendering must happen in a process that never imported TensorFlow (docs/ARCHITECTURE.md);
pytest may have TF loaded by other test files, so renders run in fresh interpreters.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_isolated(code_or_path, *args, timeout=300):
  """Runs Python in a fresh interpreter; returns the JSON its last stdout line holds."""
  cmd = [sys.executable]
  cmd += [code_or_path] if code_or_path.endswith('.py') else ['-c', code_or_path]
  env = dict(os.environ, MUJOCO_GL=os.environ.get('MUJOCO_GL', 'egl'), PYTHONPATH=ROOT)
  out = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env,
                       cwd=ROOT)
  if out.returncode != 0:
    raise AssertionError(f'isolated run failed ({out.returncode}):\n{out.stderr[-4000:]}')
  return json.loads(out.stdout.strip().splitlines()[-1])
