"""`make bench` harness (issue 8): a tiny --smoke run writes both reports with the full
schema. Timings are not asserted (the machine is shared); the schema and the
deterministic figures (replay RAM vs raw bytes, capacity) are."""
import json
import math
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
KEYS = ('value', 'unit', 'baseline', 'ratio', 'goal', 'met', 'median', 'min', 'max', 'repeats',
        'notes')


def check_schema(payload, smoke):
  """Every figure has the keys of issue 8, consistent statistics and enough repeats."""
  assert {'machine', 'command', 'options', 'figures'} <= set(payload)
  machine = payload['machine']
  assert machine['cpu'] and machine['cores'] >= 1 and machine['date']
  assert payload['figures'], 'no figures'
  for name, entry in payload['figures'].items():
    missing = [k for k in KEYS if k not in entry]
    assert not missing, f'{name} lacks {missing}'
    assert entry['repeats'] >= (2 if smoke else 5), name
    assert entry['min'] <= entry['median'] <= entry['max'], name
    assert entry['value'] == entry['median'], name
    assert isinstance(entry['unit'], str) and entry['unit'], name
    if entry['baseline'] is not None:
      assert math.isclose(entry['ratio'], entry['value'] / entry['baseline']), name
    if entry['goal'] is None:
      assert entry['met'] is None, name
    else:
      assert entry['met'] in (True, False, None), name


def run_bench(out, *args):
  proc = subprocess.run([sys.executable, '-m', 'bench', '--smoke', '--out',
                         str(out), *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc


def test_smoke_report_schema(tmp_path):
  proc = run_bench(tmp_path, '--only', 'replay')
  payload = json.loads((tmp_path / 'results.json').read_text())
  check_schema(payload, smoke=True)
  figures = payload['figures']
  assert set(figures) == {'replay/ram_per_step', 'replay/sampling'}
  ram = figures['replay/ram_per_step']
  assert ram['capacity_honoured'] is True
  # RAM per stored step is the step's raw bytes (16.5 kB for the Natural MuJoCo layout)
  # plus bookkeeping; this is memory, not time, so it is stable enough to assert.
  assert 1.0 <= ram['ratio'] < 1.5, ram
  assert figures['replay/sampling']['value'] > 0
  table = (tmp_path / 'results.md').read_text()
  assert '| replay/ram_per_step |' in table and payload['machine']['cpu'] in table
  assert 'replay/sampling' in proc.stdout


def test_bad_figure_name_is_one_clear_line(tmp_path):
  proc = subprocess.run([sys.executable, '-m', 'bench', '--only', 'nope', '--out',
                         str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60,
                        check=False)
  assert proc.returncode == 2
  assert 'valid: env, update, precision, worker, replay, export, train' in proc.stderr
  assert not (tmp_path / 'results.json').exists()


@pytest.mark.parametrize('repeats', ['1'])
def test_too_few_repeats_refused(tmp_path, repeats):
  proc = subprocess.run(
      [sys.executable, '-m', 'bench', '--smoke', '--repeats', repeats, '--out',
       str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
  assert proc.returncode == 2 and '--repeats must be >= 2' in proc.stderr
