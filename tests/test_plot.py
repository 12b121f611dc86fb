"""mummi_tf/cli/plot.py: learning curves from our logdirs and upstream Dreamer logdirs."""
import json

import numpy as np
import pytest


@pytest.fixture(scope='module')
def plot(load_tool):
  return load_tool('plot')


def _write_jsonl(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'w') as f:
    for row in rows:
      f.write(json.dumps(row) + '\n')


def _write_events(logdir, tag, steps, values, tf1=False):
  import tensorflow as tf
  writer = tf.summary.create_file_writer(str(logdir))
  with writer.as_default():
    for step, value in zip(steps, values):
      if tf1:  # TF1 style: a Summary proto with simple_value
        summary = tf.compat.v1.Summary(
            value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=value)])
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
      else:  # TF2 style: a scalar tensor summary
        tf.summary.scalar(tag, value, step=step)
      tf.summary.scalar('agent/model_loss', 1.0, step=step)
  writer.flush()
  writer.close()


def test_smoothing_is_debiased_ema(plot):
  np.testing.assert_allclose(plot.smooth(np.full(5, 3.0)), 3.0)
  out = plot.smooth(np.array([0.0, 10.0]), 0.9)
  assert out[0] == 0.0
  assert out[1] == pytest.approx(1.0 / 0.19 * 1.0)  # (0.1 * 10) / (1 - 0.81)


def test_reads_upstream_jsonl_and_event_files_and_draws(plot, tmp_path, capsys):
  steps = np.arange(0, 100_001, 10_000)
  # Upstream Dreamer metrics.jsonl: episode lines, train and test, plus a cut line.
  rows = []
  for s in steps:
    rows.append({'step': int(s), 'train/return': 1.0, 'train/length': 1000, 'episodes': 1})
    rows.append({
        'step': int(s),
        'test/return': float(s) / 1000,
        'test/length': 1000,
        'episodes': 1
    })
  up = tmp_path / 'upstream' / 'dmc_walker_walk' / 'dreamer' / '1'
  _write_jsonl(up / 'metrics.jsonl', rows)
  with open(up / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 11000, "test/ret')
  # An upstream run that kept only TensorBoard events (tag sim/test/return, TF2 scalars).
  up_tb = tmp_path / 'upstream' / 'dmc_walker_walk' / 'dreamer' / '2'
  _write_events(up_tb, 'sim/test/return', steps, steps / 1000 + 10)
  # A TF1-style event file (simple_value) under DreamerV2's name eval_return.
  up_v1 = tmp_path / 'upstream_v1' / 'dmc_cup_catch' / 'dreamer_v1' / '0'
  _write_events(up_v1, 'eval_return', steps, steps / 500, tf1=True)
  # Ours: mummi_tf.run.logger lines (many scalars, test/return only on some lines).
  ours = tmp_path / 'ours' / 'walker_walk' / 'mummi' / '0'
  _write_jsonl(ours / 'metrics.jsonl', [{
      'step': int(s),
      'model_loss': 3.0
  } for s in steps] + [{
      'step': int(s),
      'test/return': 2 * float(s) / 1000
  } for s in steps])

  got = plot.read_events(sorted(up_tb.glob('events.out.tfevents.*')), 'test/return')
  np.testing.assert_array_equal(got[0], steps)
  np.testing.assert_allclose(got[1], steps / 1000 + 10, rtol=1e-6)
  got = plot.read_events(sorted(up_v1.glob('events.out.tfevents.*')), 'test/return')
  np.testing.assert_allclose(got[1], steps / 500, rtol=1e-6)
  got = plot.read_jsonl(up / 'metrics.jsonl', 'test/return')
  np.testing.assert_allclose(got[1], steps / 1000)

  fig = tmp_path / 'fig' / 'curves.png'
  code = plot.main([
      '--logdirs',
      str(tmp_path / 'ours'), '--upstream',
      str(tmp_path / 'upstream'),
      str(tmp_path / 'upstream_v1'), '--out',
      str(fig), '--metric', 'test/return'
  ])
  assert code == 0
  assert fig.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and fig.stat().st_size > 10_000
  printed = capsys.readouterr().out
  lines = {tuple(l.split()[:2]): l for l in printed.splitlines() if 'seeds' in l}
  # Both upstream seeds (jsonl + events) share one curve with ours on the walker panel.
  assert 'seeds 2' in lines[('walker_walk', 'dreamer')]
  assert 'seeds 1' in lines[('walker_walk', 'mummi')]
  assert ('cup_catch', 'dreamer_v1') in lines
  # Last smoothed mean of the two upstream seeds: EMA of s/1000 and s/1000 + 10.
  expected = plot.smooth(steps / 1000 + 5.0)[-1]
  assert f'(smoothed curve ends at {expected:.2f})' in lines[('walker_walk', 'dreamer')]
  # Beside it, the last value each seed logged, unsmoothed: s/1000 and s/1000 + 10 at 100k.
  assert 'last logged    105.00 ± 5.00' in lines[('walker_walk', 'dreamer')]


def test_bad_input_gets_one_clear_line(plot, tmp_path, capsys):
  with pytest.raises(SystemExit):
    plot.main(['--logdirs', str(tmp_path / 'missing'), '--out', str(tmp_path / 'f.png')])
  assert 'does not exist' in capsys.readouterr().err
  _write_jsonl(tmp_path / 'run' / 'metrics.jsonl', [{'step': 1, 'train/return': 2.0}])
  with pytest.raises(SystemExit):
    plot.main(['--logdirs', str(tmp_path / 'run'), '--out', str(tmp_path / 'f.png')])
  assert "no run holds the metric 'test/return'" in capsys.readouterr().err


def test_our_runs_are_identified_by_their_run_json(plot, tmp_path, capsys):
  """Runs in flat folders (runs/walker_stand-mummi, ...) keep their method and task."""
  steps = np.arange(0, 50_001, 10_000)
  for name, method, files, seed, scale in (('walker_stand-mummi', 'mummi', [
      'mummi'
  ], 0, 1.0), ('walker_stand-dreamer', 'dreamer', ['dreamer'], 0,
               2.0), ('walker_stand-dreamer-1', 'dreamer', ['dreamer'], 1,
                      2.0), ('plain', 'dreamer', ['dreamer', 'plain', 'small'], 0, 3.0)):
    run = tmp_path / 'runs' / name
    _write_jsonl(run / 'metrics.jsonl', [{
        'step': int(s),
        'test/return': scale * s / 1000
    } for s in steps])
    (run / 'run.json').write_text(
        json.dumps({
            'task': 'walker_stand',
            'method': method,
            'seed': seed,
            'gin_files': files
        }))
  assert plot.main([
      '--logdirs',
      str(tmp_path / 'runs' / 'walker_stand-mummi'),
      str(tmp_path / 'runs' / 'walker_stand-dreamer'),
      str(tmp_path / 'runs' / 'walker_stand-dreamer-1'),
      str(tmp_path / 'runs' / 'plain'), '--out',
      str(tmp_path / 'f.png')
  ]) == 0
  printed = [l for l in capsys.readouterr().out.splitlines() if 'seeds' in l]
  assert len(printed) == 3 and all(l.startswith('walker_stand ') for l in printed)
  by_method = {l.split('seeds')[0].split(None, 1)[1].strip(): l for l in printed}
  assert set(by_method) == {'mummi', 'dreamer', 'dreamer (plain small)'}
  assert 'seeds 2' in by_method['dreamer'] and 'seeds 1' in by_method['mummi']


def test_reference_curves_are_drawn_behind_ours(plot, tmp_path, capsys):
  """--reference dreamerv3 drqv2: published per-seed curves of our tasks, up to our range."""
  data = json.loads(plot.REFERENCE_FILE.read_text())
  assert 'MIT' in data['licence'] and len(data['commit']) == 40
  run = tmp_path / 'run'
  _write_jsonl(run / 'metrics.jsonl', [{
      'step': s,
      'test/return': 100.0
  } for s in range(0, 100_001, 10_000)])
  (run / 'run.json').write_text(
      json.dumps({
          'task': 'walker_stand',
          'method': 'dreamer',
          'seed': 0,
          'gin_files': ['dreamer']
      }))
  assert plot.main([
      '--logdirs',
      str(run), '--reference', 'dreamerv3', 'drqv2', '--out',
      str(tmp_path / 'f.png')
  ]) == 0
  printed = {
      l.split('seeds')[0].split(None, 1)[1].strip(): l
      for l in capsys.readouterr().out.splitlines()
      if 'seeds' in l
  }
  assert set(printed) == {'dreamer', 'DreamerV3 (published)', 'DrQ-v2 (published)'}
  assert 'seeds 10' in printed['DreamerV3 (published)']
  line = printed['DreamerV3 (published)']
  logged = float(line.split('last logged')[1].split()[0])
  smoothed = float(line.split('smoothed curve ends at ')[1].rstrip(')'))
  assert 700 < smoothed < 1000 and 700 < logged < 1000  # DreamerV3 stands by ~100k env steps
  assert 'last logged    100.00 ± 0.00' in printed['dreamer']  # our constant run, unsmoothed
  refs = plot.load_reference(['dreamerv3'], ['walker_stand'], 110_000)
  assert all(r.steps[-1] <= 110_000 and r.task == 'walker_stand' for r in refs)
  # A reference that would start after our last step is named, not dropped silently.
  short = tmp_path / 'short'
  _write_jsonl(short / 'metrics.jsonl', [{'step': s, 'test/return': 1.0} for s in (0, 1000)])
  (short / 'run.json').write_text(json.dumps({'task': 'walker_stand', 'method': 'dreamer'}))
  assert plot.main([
      '--logdirs',
      str(short), '--reference', 'dreamerv3', '--out',
      str(tmp_path / 's.png')
  ]) == 0
  assert 'walker_stand: no DreamerV3 (published) curve drawn' in capsys.readouterr().out
  with pytest.raises(SystemExit):
    plot.main(['--logdirs', str(run), '--reference', 'planet', '--out', str(tmp_path / 'g.png')])


def _write_upstream_logdir(logdir, steps):
  """A logdir as upstream Dreamer's dreamer.py writes it: summarize_episode's metrics.jsonl
  lines and `sim/` scalars, _write_summaries' agent lines and `agent/` scalars, and
  tools.save_episodes' `{time}-{uuid}-{length}.npz` files with upstream's keys."""
  import tensorflow as tf
  episodes = logdir / 'episodes'
  episodes.mkdir(parents=True)
  writer = tf.summary.create_file_writer(str(logdir))
  rows = []
  with writer.as_default():
    for i, step in enumerate(steps):
      length = 500  # agent steps: len(episode['reward']) - 1
      episode = {
          'image': np.zeros((length + 1, 64, 64, 3), np.uint8),
          'action': np.zeros((length + 1, 6), np.float32),
          'reward': np.full(length + 1, step / 1e6, np.float32),
          'discount': np.ones(length + 1, np.float32)
      }
      np.savez_compressed(episodes / f'20200101T0000{i:02d}-{i:032x}-{length + 1}.npz', **episode)
      for prefix in ('train', 'test'):
        metrics = [(f'{prefix}/return', float(episode['reward'].sum())),
                   (f'{prefix}/length', length), ('episodes', i + 1)]
        rows.append(dict([('step', int(step))] + metrics))
        for name, value in metrics:
          tf.summary.scalar('sim/' + name, value, step=int(step))
      agent = [('model_loss', 10.0), ('actor_loss', -1.0), ('fps', 20.0)]
      rows.append({'step': int(step), **dict(agent)})
      for name, value in agent:
        tf.summary.scalar('agent/' + name, value, step=int(step))
  writer.flush()
  _write_jsonl(logdir / 'metrics.jsonl', rows)


def test_our_logs_line_up_with_upstreams_real_format(plot, tmp_path, capsys):
  """One TensorBoard chart per quantity and the same x and length units as upstream."""
  from tensorboard.backend.event_processing import event_accumulator
  from mummi_tf.run import logger as logger_lib
  steps = np.arange(10_000, 60_001, 10_000)
  upstream = tmp_path / 'upstream' / 'dmc_walker_walk' / 'dreamer' / '0'
  _write_upstream_logdir(upstream, steps)
  ours = tmp_path / 'ours'
  log = logger_lib.Logger(ours)
  for step in steps:
    for prefix in ('train', 'test'):
      log.scalar(f'{prefix}/return', 250.0 * step / 1e6)
      log.scalar(f'{prefix}/length', 500)  # what trainer/evaluation log: agent steps
    log.scalar('episodes', 1)
    for name in ('model_loss', 'actor_loss', 'fps'):
      log.scalar(name, 1.0)
    log.write(int(step))
  (ours / 'run.json').write_text(
      json.dumps({
          'task': 'walker_walk',
          'method': 'dreamer',
          'seed': 0,
          'gin_files': ['dreamer']
      }))

  def tags(logdir):
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={'tensors': 0})
    acc.Reload()
    return set(acc.Tags()['tensors']) | set(acc.Tags()['scalars'])

  shared = {
      'sim/train/return', 'sim/train/length', 'sim/test/return', 'sim/test/length', 'sim/episodes',
      'agent/model_loss', 'agent/actor_loss', 'agent/fps'
  }
  assert shared <= tags(upstream) and shared <= tags(ours)
  keys = lambda d: {
      k for row in map(json.loads, (d / 'metrics.jsonl').read_text().splitlines()) for k in row
  }
  assert keys(upstream) <= keys(ours)  # the same metrics.jsonl keys, no prefix
  assert plot.main([
      '--logdirs',
      str(ours), '--upstream',
      str(tmp_path / 'upstream'), '--out',
      str(tmp_path / 'f.png')
  ]) == 0
  printed = [l for l in capsys.readouterr().out.splitlines() if 'seeds' in l]
  assert len(printed) == 2 and all(l.startswith('walker_walk ') for l in printed)  # one panel
  assert all('last step     60000' in l for l in printed)  # the same x: env steps
