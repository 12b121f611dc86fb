"""Subprocesses of the bench: a fresh interpreter per probe, its `RESULT {...}` lines parsed."""
import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def env():
  """The environment of a probe: headless GL, quiet TF."""
  return {
      **os.environ, 'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl'),
      'PYOPENGL_PLATFORM': os.environ.get('PYOPENGL_PLATFORM', 'egl'),
      'TF_CPP_MIN_LOG_LEVEL': os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2')
  }


def run(args, timeout):
  """Runs `python args...` in the repository; returns (results, stdout+stderr tail).

  `results`: the JSON objects of its `RESULT ` lines. A failed or timed-out process
  gives the results printed so far and its output tail (for the figure's note).
  """
  cmd = [sys.executable] + [str(a) for a in args]
  try:
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    out, err, code = proc.stdout, proc.stderr, proc.returncode
  except subprocess.TimeoutExpired as e:
    out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
    err = f'timed out after {timeout} s'
    code = None
  results = [
      json.loads(line[len('RESULT '):]) for line in out.splitlines() if line.startswith('RESULT ')
  ]
  tail = ' '.join((err or '').strip().splitlines()[-3:])[-300:]
  if code not in (0,) and not tail:
    tail = f'exit code {code}'
  return results, ('' if code == 0 else tail)


def emit(measure, **context):
  """The probe's side: prints `RESULT {...}` of `measure()`, or `context` with the error that
  ended it (the harness reports it as the figure's note)."""
  try:
    result = measure()
  except Exception as e:  # noqa: BLE001 - reported to the harness as the figure's note
    result = {**context, 'error': f'{type(e).__name__}: {" ".join(str(e).split())[:300]}'}
  print('RESULT ' + json.dumps(result), flush=True)
