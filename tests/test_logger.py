import json

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from mummi_tf.run import logger as logger_lib


def test_scalars_are_averaged_and_written_to_jsonl_and_tensorboard(tmp_path):
  logger = logger_lib.Logger(tmp_path)
  logger.scalar('model_loss', 1.0)
  logger.scalar('model_loss', 3.0)
  logger.scalar('model_loss', float('nan'))  # non-finite values never poison the mean
  logger.add({'return': 5.0}, prefix='train')
  logger.write(step=100)
  logger.add({'return': 7.0}, prefix='test')
  logger.write(step=200)
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert lines == [
      {
          'step': 100,
          'model_loss': 2.0,
          'nonfinite/model_loss': 1.0,  # counted where a user sees it
          'train/return': 5.0
      },
      {
          'step': 200,
          'test/return': 7.0
      }
  ]
  assert logger.latest('train/return') == 5.0 and logger.latest('model_loss') == 2.0
  assert logger.latest('never', 'default') == 'default'
  acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={'tensors': 0})
  acc.Reload()
  # Upstream Dreamer's tags: one TensorBoard shows both implementations on the same charts.
  assert {'agent/model_loss', 'sim/train/return', 'sim/test/return'} <= set(acc.Tags()['tensors'])


def test_an_unfinished_last_line_is_dropped_before_the_next_record(tmp_path, caplog):
  """A kill or a full disk mid-write leaves half a line; the next record must not join it
  (issue 34, item 11), and the step of the last whole record is what a resume reads."""
  (tmp_path /
   'metrics.jsonl').write_text('{"step": 1000, "test/return": 5.0}\n{"step": 2000, "train/ret')
  logger = logger_lib.Logger(tmp_path)
  logger.scalar('model_loss', 1.0)
  logger.write(step=3000)
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert lines == [{'step': 1000, 'test/return': 5.0}, {'step': 3000, 'model_loss': 1.0}]
  assert logger_lib.last_step_with(tmp_path, 'test/return') == 1000
  assert 'Dropped an unfinished last line' in caplog.text


def test_latest_is_the_mean_the_file_gets_not_the_last_value(tmp_path):
  # The progress bar's `test=`: an evaluation's mean return, as metrics.jsonl logs it.
  logger = logger_lib.Logger(tmp_path)
  for ret in (100.0, 200.0, 600.0):
    logger.scalar('test/return', ret)
  assert logger.latest('test/return') == 300.0
  logger.write(step=10)
  assert logger.latest('test/return') == 300.0  # after the write: the written mean
  logger.scalar('test/return', 50.0)
  assert logger.latest('test/return') == 50.0


def test_tensorboard_tags_are_upstreams():
  tag = logger_lib.tensorboard_tag
  assert tag('train/return') == 'sim/train/return' and tag('test/length') == 'sim/test/length'
  assert tag('episodes') == 'sim/episodes' and tag('test/return_high') == 'sim/test/return_high'
  assert tag('model_loss') == 'agent/model_loss' and tag('fps') == 'agent/fps'
  assert tag('infonce_acc/rgb') == 'agent/infonce_acc/rgb'


def test_video_writes_mp4_and_tensorboard_gif(tmp_path):
  logger = logger_lib.Logger(tmp_path)
  frames = np.random.default_rng(0).integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
  path = logger.video('test/video_none', frames, step=10)
  assert path.exists() and path.stat().st_size > 0
  acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={'tensors': 0})
  acc.Reload()
  event = acc.Tensors('sim/test/video_none')[0]
  gif = event.tensor_proto.string_val[2]
  assert gif[:6] in (b'GIF89a', b'GIF87a')
