"""`make bench` harness (issue 8): a tiny --smoke run writes both reports with the full
schema. Timings are not asserted (the machine is shared); the schema and the
deterministic figures (replay RAM vs raw bytes, capacity) are."""
import json
import math
import statistics
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


def run_bench(out, *args, timeout=120):
  proc = subprocess.run([sys.executable, '-m', 'bench', '--smoke', '--out',
                         str(out), *args], cwd=REPO, capture_output=True, text=True,
                        timeout=timeout, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
  """One smoke run of the figures asserted below (one TF start-up for all of them); returns
  (the process, results.json, the output folder)."""
  out = tmp_path_factory.mktemp('smoke')
  proc = run_bench(out, '--only', 'replay,roofline,train,collect,projection', timeout=900)
  payload = json.loads((out / 'results.json').read_text())
  check_schema(payload, smoke=True)
  return proc, payload, out


def group(payload, *prefixes):
  """The figures whose names start with one of ``prefixes``."""
  return {k: v for k, v in payload['figures'].items() if k.startswith(prefixes)}


def test_smoke_report_schema(smoke):
  proc, payload, out = smoke
  figures = group(payload, 'replay/')
  assert set(figures) == {'replay/ram_per_step', 'replay/sampling'}
  ram = figures['replay/ram_per_step']
  assert ram['capacity_honoured'] is True
  # RAM per stored step is the step's raw bytes (16.5 kB for the Natural MuJoCo layout)
  # plus bookkeeping; this is memory, not time, so it is stable enough to assert.
  assert 1.0 <= ram['ratio'] < 1.5, ram
  assert figures['replay/sampling']['value'] > 0
  table = (out / 'results.md').read_text()
  assert '| replay/ram_per_step |' in table and payload['machine']['cpu'] in table
  assert 'replay/sampling' in proc.stdout


def test_smoke_roofline(smoke):
  """Issue 16: the update's and its parts' FLOPs and fraction of the matmul peak, for both
  methods and both precisions; the parts partition the update's FLOPs."""
  figures = group(smoke[1], 'roofline/')
  assert figures['roofline/peak_float32']['value'] > 0
  assert figures['roofline/peak_bfloat16']['value'] > 0
  updates = [k for k in figures if k.count('/') == 2]
  assert 'roofline/mummi/float32' in updates and len(updates) == 2, sorted(figures)
  assert any(k.startswith('roofline/dreamer/mixed_') for k in updates), updates
  for name in updates:
    parts = {k.split('/')[-1]: v for k, v in figures.items() if k.startswith(name + '/')}
    assert {'encoders', 'observe', 'imagination', 'actor_value'} <= set(parts), parts
    assert figures[name]['bottleneck'] in set(parts) | {'rest'}
    for entry in [figures[name], *parts.values()]:
      assert entry['flops'] > 0 and 0 < entry['fraction'], entry
      assert math.isclose(entry['fraction'], entry['ratio'])
    assert sum(p['flops'] for p in parts.values()) == figures[name]['flops']
  assert {'experts', 'fusion_infonce'} <= {k.split('/')[-1] for k in figures if 'mummi' in k}


def test_smoke_train_split_and_collect(smoke):
  """Issue 16: the train figure reports where each window's wall time went and each core's
  idle fraction; the collect figures time the training policy with and without MPC against
  the env step of the same run."""
  figures = group(smoke[1], 'train/', 'collect/')
  train = figures['train/quick']
  assert set(train['split_fraction']) == {
      'update', 'env', 'policy', 'replay', 'log', 'save', 'eval', 'other'
  }
  assert all(v >= 0 for v in train['split_s'].values())
  assert sum(train['split_fraction'].values()) == pytest.approx(1, abs=0.05)
  assert train['split_fraction']['env'] > 0 and train['policy_ms_per_agent_step'] > 0
  assert all(0 <= v <= 1 for v in train['cpu_idle'].values())
  assert 'wall time per window' in train['notes']
  assert set(figures) == {
      'train/quick', 'collect/policy_mpc', 'collect/policy', 'collect/policy_mpc_xla'
  }
  mpc, plain = figures['collect/policy_mpc'], figures['collect/policy']
  assert mpc['goal'] == 'ratio <= 1.0' and plain['goal'] is None
  assert mpc['baseline'] == plain['baseline'] > 0 and mpc['value'] > 0 and plain['value'] > 0
  assert 'goal ' in mpc['notes'] and mpc['mpc_horizon'] == 3
  xla = figures['collect/policy_mpc_xla']
  assert xla['goal'] == mpc['goal'] and xla['baseline'] == mpc['baseline']
  assert xla['speedup'] == pytest.approx(mpc['value'] / xla['value'])
  assert 'XLA-compiled' in xla['notes'] and 'XLA-compiled' not in mpc['notes']


def test_smoke_projection_adds_up_from_a_real_short_run(smoke):
  """Issue 33: a whole run's wall time, projected from a short `mummi small` run's timed
  windows, a warm evaluation and the prefill, with small.gin's schedule (tiny sizes here)."""
  entry = group(smoke[1], 'projection/')['projection/mummi_small']
  plan = entry['plan']
  assert (plan['steps'], plan['prefill'], plan['eval_every']) == (100000, 5000, 10000)
  assert entry['goal'] == 'value <= 90' and len(entry['window_s']) == entry['repeats'] == 2
  assert len(entry['eval_s']) >= 1 and entry['prefill_s_per_env_step'] > 0
  parts = entry['prefill_min'] + entry['training_min'] + entry['evaluation_min']
  assert parts == pytest.approx(entry['value'])
  windows = (plan['steps'] - plan['prefill']) / plan['train_every']
  assert entry['training_min'] * 60 == pytest.approx(windows * statistics.median(entry['window_s']))
  assert entry['evaluation_min'] * 60 == pytest.approx(10 * statistics.median(entry['eval_s']))


@pytest.mark.parametrize('prefill, steps, count', [(5000, 100000, 10), (0, 100000, 10),
                                                   (15000, 100000, 10), (5000, 95500, 10),
                                                   (5000, 4000, 1)])
def test_projection_counts_the_trainers_evaluations(prefill, steps, count):
  """The trainer evaluates every `eval_every` env steps once the prefill is done (at 10k ...
  100k for small.gin; at 15k, 20k, ... after a 15k prefill) and at the end of a run whose
  last window had none."""
  from bench import figures_projection
  plan = dict(steps=steps, prefill=prefill, train_every=1000, eval_every=10000)
  assert figures_projection.evaluations(plan) == count


def test_smoke_switch_figures_set_what_they_compare(tmp_path):
  """small.gin's thread pools against TF's default, and upstream's update order against the
  default: each probe process reports the pools TF runs with and the agent's update order; a
  figure is the switch's time over the setting without it."""
  run_bench(tmp_path, '--only', 'threads,order', timeout=900)
  payload = json.loads((tmp_path / 'results.json').read_text())
  check_schema(payload, smoke=True)
  threads, order = (payload['figures'][f'{s}/mummi_small'] for s in ('threads', 'order'))
  assert threads['threads'] == [1, 2] and threads['baseline_threads'] == [0, 0]
  assert threads['model_step_first'] is threads['baseline_model_step_first'] is True
  assert order['threads'] == order['baseline_threads'] == [1, 2]
  assert order['model_step_first'] is False and order['baseline_model_step_first'] is True
  for entry in (threads, order):
    assert entry['baseline'] > 0 and entry['ratio'] > 0


def test_update_probe_builds_the_agent_of_its_gin_files():
  """`--gin_file small` (the threads and order figures) builds small.gin's agent: fewer
  parameters than the method's own sizes (a probe that dropped it timed the paper's sizes)."""
  params = {}
  for extra in ([], ['--gin_file', 'small']):
    proc = subprocess.run([
        sys.executable, '-m', 'bench.update_probe', '--method', 'mummi', '--batch', '2', '--length',
        '3', '--warmup', '1', '--repeats', '1'
    ] + extra, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    line = next(l for l in proc.stdout.splitlines() if l.startswith('RESULT '))
    result = json.loads(line[len('RESULT '):])
    assert 'error' not in result, result
    params[tuple(extra)] = result['params']
    assert result['gin_files'] == extra[1:]
  assert params[('--gin_file', 'small')] < 0.5 * params[()], params


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


def test_results_md_names_the_figures_kept_from_an_earlier_run():
  """`--only` keeps earlier figures in results.json; the table's header says which and when,
  so that the run's machine line is not read as theirs."""
  from bench import report
  info = {'date': '2026-12-04 05:00 UTC', 'cpu': 'cpu', 'cores': 2, 'python': '3.11'}
  new = dict(report.figure('collect/policy', [1.0, 2.0], 'ms'), date=info['date'])
  old = dict(report.figure('env/walker_stand', [3.0, 4.0], 'ms'), date='2026-11-29 21:43 UTC')
  header = report.markdown({'a': new, 'b': old}, info, 'python -m bench').split('| figure |')[0]
  assert 'kept from earlier runs' in header and '1 measured 2026-11-29 21:43 UTC (env' in header
  assert 'kept' not in report.markdown({'a': new}, info, 'python -m bench').split('| figure |')[0]
