"""mummi_tf/cli/summarize.py: a run's markdown tables from its metrics.jsonl."""
import json

import pytest


@pytest.fixture(scope='module')
def summarize(load_tool):
  return load_tool('summarize')


def _train(step, ret, reward=0.5, value=40.0):
  return {
      'step': step,
      'train/return': ret,
      'time/wall': 60.0,
      'kl': 3.0,
      'imag_reward': reward,
      'imag_value': value,
      'infonce_acc/rgb': 0.9,
      'precision_share/prior': 0.5
  }


def _test(step, none, high):
  return {
      'step': step,
      'test/return': (none + high) / 2,
      'test/return_std': 1.0,
      'test/return_high': high,
      'test/return_none': none,
      'test/return_std_high': 7.0,
      'test/return_std_none': 5.0
  }


def _write(logdir, rows, gamma=None):
  logdir.mkdir()
  with open(logdir / 'metrics.jsonl', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
    f.write('{"step": 3000, "train/ret')  # a line cut short by a crash
  if gamma is not None:
    (logdir / 'operative_config.gin').write_text(f'ActorCritic.discount = {gamma}\n')


def test_tables_per_evaluation_with_a_resumed_stretch(summarize, tmp_path):
  rows = [_train(1000, 100), _train(2000, 300), _test(2000, 250, 120), _train(3000, 999)]
  # Resumed from the 2k checkpoint: 3k is logged again and the second one counts.
  behaviour = {'test/action_saturated_none': 0.85, 'test/action_flips_none': 0.08}
  rows += [_train(3000, 500, reward=0.8, value=70.0), _train(4000, 700)]
  rows += [{**_test(4000, 600, 400), **behaviour}]
  _write(tmp_path / 'run', rows, gamma=0.9)
  returns, diagnostics = summarize.summarize(tmp_path / 'run').strip().split('\n\n')
  lines = returns.split('\n')
  assert lines[0].startswith('| env steps | test `none` | test `high` | train return')
  assert lines[2] == '| 2k | 250 ± 5 | 120 ± 7 | 200 (100–300) | 2 |'
  assert lines[3] == '| 4k | 600 ± 5 | 400 ± 7 | 600 (500–700) | 4 |'
  diag = diagnostics.split('\n')
  assert diag[0].endswith('| InfoNCE accuracy rgb | prior share | actions saturated | sign flips |')
  # The last training window at or before 4k; r / (1 - gamma) with the run's gamma 0.9; the
  # behaviour from the evaluation itself (none logged at 2k).
  assert diag[2].endswith('| 0.90 | 0.50 | — | — |')
  assert diag[3] == '| 4k | 3.00 | 0.50 | 40.0 | 5 | 0.90 | 0.50 | 0.85 | 0.08 |'
  assert summarize.by_step(summarize.plot.read_rows(tmp_path / 'run' /
                                                    'metrics.jsonl'))[2]['imag_value'] == 70.0


def test_bad_logdir_is_one_line_and_exit_2(summarize, tmp_path, capsys):
  assert summarize.main([str(tmp_path / 'nope')]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and 'metrics.jsonl' in err
  _write(tmp_path / 'untested', [_train(1000, 100)])
  assert summarize.main([str(tmp_path / 'untested')]) == 2
  assert 'No evaluation' in capsys.readouterr().err
