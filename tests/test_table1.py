"""mummi_tf/cli/table1.py as a user calls it (a subprocess) on fixture trial logdirs: the files a
sweep's trial leaves (run.json, metrics.jsonl, sweep_eval.json), in mummi_tf/cli/sweep.py's layout."""
import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOL = ['-m', 'mummi_tf.cli.table1']  # as make table1 runs it


def table1(*args, reps=200):
  """The tool with few bootstrap resamples (the README's check: its default)."""
  args = list(args) + (['--reps', str(reps)] if reps else [])
  return subprocess.run([sys.executable, *TOOL, *map(str, args)], capture_output=True, text=True,
                        cwd=ROOT, timeout=300)


def trial(runs, method, seed, base, finished=True):
  """A trial logdir whose final evaluation returns ``base + episode`` at 'none', 10 less at
  'medium', 20 less at 'high'; evaluations every 50k env steps, training returns every 10k."""
  logdir = runs / 'walker_stand' / f'{method}-small' / f'seed{seed}'
  logdir.mkdir(parents=True)
  run = {'task': 'walker_stand', 'method': method, 'seed': seed, 'gin_files': [method, 'small']}
  (logdir / 'run.json').write_text(json.dumps(run))
  rows = [{'step': s, 'train/return': base / 2 + s / 1000} for s in range(10000, 100001, 10000)]
  for step in (50000, 100000):
    rows.append({'step': step, **{f'test/return_{c}': base - d for c, d in COND.items()}})
  # The final checkpoint evaluated again (old code's --eval_only wrote into metrics.jsonl): the
  # curve keeps the training's own evaluation, the first at that step.
  rows.append({'step': 100000, **{f'test/return_{c}': -1.0 for c in COND}})
  (logdir / 'metrics.jsonl').write_text('\n'.join(json.dumps(r) for r in rows) + '\n{"step": 1')
  if finished:
    returns = {c: [base - d + e for e in range(10)] for c, d in COND.items()}
    result = {'checkpoint': 100000, 'episodes': 10, 'returns': returns}
    (logdir / 'sweep_eval.json').write_text(json.dumps(result))
  return logdir


COND = {'none': 0, 'medium': 10, 'high': 20}


@pytest.fixture
def runs(tmp_path):
  runs = tmp_path / 'runs'
  for seed, base in enumerate((600, 700, 800)):
    trial(runs, 'mummi', seed, base)
    trial(runs, 'dreamer', seed, base - 400)
  trial(runs, 'cvrl', 0, 500, finished=False)  # still training: curves only
  return runs


def rows(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def test_every_episode_is_kept_and_the_table_is_the_papers(runs, tmp_path):
  out = tmp_path / 'table1'
  done = table1('--runs', runs, '--out', out, '--commit', 'abc1234')
  assert done.returncode == 0, done.stderr
  episodes = rows(out / 'walker_stand.csv')
  assert list(episodes[0]) == [
      'method', 'gin', 'seed', 'condition', 'episode', 'return', 'env_steps', 'commit'
  ]
  assert len(episodes) == 2 * 3 * 3 * 10  # the unfinished CVRL run has no final episodes
  assert {r['commit'] for r in episodes} == {'abc1234'}
  assert {r['env_steps'] for r in episodes} == {'100000'}
  mummi_none = [
      float(r['return']) for r in episodes if r['gin'] == 'mummi small' and r['condition'] == 'none'
  ]
  pooled = [b + e for b in (600, 700, 800) for e in range(10)]
  assert sorted(mummi_none) == sorted(pooled)
  text = (out / 'walker_stand.md').read_text()
  assert f'{np.mean(pooled):.1f} ± {np.std(pooled):.1f} (30 ep., 3 seeds)' in text
  # IQM of the three seeds' means (604.5, 704.5, 804.5) is their mean; MuMMI beats Dreamer in
  # every seed pairing: P(MuMMI > Dreamer) = 1 with a degenerate interval.
  assert '| none | MuMMI | 3 | 704.5 [' in text
  assert '| none | Dreamer | 3 | 304.5 [' in text
  assert '| 1.00 [1.00, 1.00] |' in text
  # DreamerV3's protocol: training returns in (90k, 100k], per seed.
  assert '| MuMMI | 400 (seed 0), 450 (seed 1), 500 (seed 2) | 450.0 |' in text
  curves = rows(out / 'walker_stand_curves.csv')
  assert {r['gin'] for r in curves} == {'mummi small', 'dreamer small', 'cvrl small'}
  finals = [r for r in curves if r['env_steps'] == '100000' and r['condition'] != 'train']
  assert len(finals) == 7 * 3 and all(float(r['return']) > 0 for r in finals)
  assert (out / 'walker_stand.png').stat().st_size > 10000
  assert done.stdout.startswith('**walker_stand**')


def test_runs_from_elsewhere_accumulate_and_a_rerun_replaces_its_own(runs, tmp_path):
  out = tmp_path / 'table1'
  assert table1('--runs', runs, '--out', out, '--no_plot').returncode == 0
  later = tmp_path / 'later'
  trial(later, 'mummi_b', 0, 650)
  trial(later, 'dreamer', 2, 100)  # a rerun of one seed replaces that seed's rows only
  assert table1('--runs', later, '--out', out, '--no_plot').returncode == 0
  episodes = rows(out / 'walker_stand.csv')
  assert len(episodes) == 2 * 3 * 3 * 10 + 3 * 10
  dreamer2 = {
      float(r['return'])
      for r in episodes
      if r['gin'] == 'dreamer small' and r['seed'] == '2' and r['condition'] == 'none'
  }
  assert dreamer2 == {100.0 + e for e in range(10)}
  header = (out / 'walker_stand.md').read_text().splitlines()[2]
  assert header == '| missing | MuMMI | MuMMI-b | Dreamer |'  # Table I's order; no CVRL episodes


def test_the_readme_block_is_written_and_checked(runs, tmp_path):
  out = tmp_path / 'table1'
  readme = tmp_path / 'README.md'
  readme.write_text('# x\n<!-- table1:walker_stand begin -->\nold\n'
                    '<!-- table1:walker_stand end -->\nrest\n')
  assert table1('--runs', runs, '--out', out, '--readme', readme, '--no_plot').returncode == 0
  assert table1('--out', out, '--check', readme).returncode == 0  # deterministic bootstrap
  assert readme.read_text().endswith('<!-- table1:walker_stand end -->\nrest\n')
  readme.write_text(readme.read_text().replace('704.5', '705.5'))
  checked = table1('--out', out, '--check', readme)
  assert checked.returncode == 1 and 'differs' in checked.stderr


@pytest.mark.parametrize('args, message', [
    (['--runs', 'no/such/folder'], 'is not a folder'),
    (['--out', 'no/such/results'], 'holds no results'),
])
def test_bad_input_is_one_line(args, message):
  done = table1(*args)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [done.stderr.strip()] and message in done.stderr


def test_the_readmes_table_is_the_committed_results():
  """README's Table I block equals what the tool computes from docs/results/table1."""
  done = table1('--out', ROOT / 'docs' / 'results' / 'table1', '--check', ROOT / 'README.md',
                reps=None)
  assert done.returncode == 0, done.stderr
