"""Metrics in upstream Dreamer's formats: ``metrics.jsonl`` lines and TensorBoard scalars.

Scalars are averaged between writes; each write appends one JSON line ``{"step": ..., name:
value, ...}`` (names without prefix, as upstream's file) and the same scalars to TensorBoard
under upstream's tags (``tensorboard_tag``): episode quantities under ``sim/`` (``sim/train/
return``), the agent's under ``agent/`` (``agent/model_loss``), so one TensorBoard shows our
runs and upstream Dreamer's on the same charts. Videos go to ``logdir/videos/*.mp4`` and to
TensorBoard as animated GIFs.
"""

import collections
import json
import logging
import pathlib
import time

import imageio.v3 as iio
import numpy as np
import tensorflow as tf
from tensorboard.plugins.image import metadata as image_metadata

SIM_PREFIXES = ('train/', 'test/')  # episode quantities, and the episode count


def tensorboard_tag(name):
  """Upstream Dreamer's TensorBoard tag of a metric: ``sim/`` for episode quantities
  (``train/*``, ``test/*``, ``episodes``), ``agent/`` for everything else."""
  if name.startswith(SIM_PREFIXES) or name == 'episodes':
    return f'sim/{name}'
  return f'agent/{name}'


class Logger:
  """Means of scalars per logged step, appended to ``logdir/metrics.jsonl`` and TensorBoard.

  A non-finite value is left out of its mean and counted instead: ``nonfinite/<name>`` in the
  record, and one warning per write naming them (an update skipped for a NaN loss shows).
  """
  def __init__(self, logdir):
    self.logdir = pathlib.Path(logdir)
    self.logdir.mkdir(parents=True, exist_ok=True)
    repair_tail(self.logdir / 'metrics.jsonl')
    self._writer = tf.summary.create_file_writer(str(self.logdir), max_queue=100)
    self._sums = collections.defaultdict(float)
    self._counts = collections.defaultdict(int)
    self._nonfinite = collections.Counter()
    self._written = {}  # the means of the last write that had each name

  def scalar(self, name, value):
    value = float(value)
    if np.isfinite(value):
      self._sums[name] += value
      self._counts[name] += 1
    else:
      self._nonfinite[name] += 1

  def add(self, metrics, prefix=None):
    for name, value in metrics.items():
      self.scalar(f'{prefix}/{name}' if prefix else name, np.mean(value))

  def latest(self, name, default=None):
    """What ``metrics.jsonl`` says (or will say at the next write) of ``name``: the mean of
    the values since the last write, else the last written mean -- for the progress bar, so
    that it shows an evaluation's mean return, not its last episode's."""
    if self._counts.get(name):
      return self._sums[name] / self._counts[name]
    return self._written.get(name, default)

  def write(self, step):
    if self._nonfinite:
      logging.warning('Non-finite values left out of the means at step %d: %s.', step,
                      ', '.join(f'{k} x{n}' for k, n in sorted(self._nonfinite.items())))
      for name, count in self._nonfinite.items():
        self._sums[f'nonfinite/{name}'] += count
        self._counts[f'nonfinite/{name}'] = 1
      self._nonfinite.clear()
    if not self._sums:
      return {}
    means = {k: self._sums[k] / self._counts[k] for k in sorted(self._sums)}
    self._written.update(means)
    self._sums.clear()
    self._counts.clear()
    with (self.logdir / 'metrics.jsonl').open('a') as f:
      f.write(json.dumps({'step': int(step), **means}) + '\n')
    with self._writer.as_default():
      for name, value in means.items():
        tf.summary.scalar(tensorboard_tag(name), value, step=step)
    self._writer.flush()
    return means

  def video(self, name, frames, step, fps=20):
    """Saves ``frames`` (T, H, W, 3) uint8 as MP4 and shows them in TensorBoard as a GIF."""
    frames = np.asarray(frames)
    folder = self.logdir / 'videos'
    folder.mkdir(exist_ok=True)
    path = folder / f'{name.replace("/", "_")}-{int(step):09d}.mp4'
    iio.imwrite(path, frames, fps=fps, macro_block_size=1)
    gif = iio.imwrite('<bytes>', frames, extension='.gif', duration=1000 / fps, loop=0)
    height, width = frames.shape[1:3]
    tag = tensorboard_tag(name)
    meta = image_metadata.create_summary_metadata(display_name=tag, description='',
                                                  converted_to_tensor=True)
    with self._writer.as_default():
      tf.summary.write(tag, tf.constant([str(width), str(height), gif]), step=step, metadata=meta)
    self._writer.flush()
    return path


def repair_tail(path):
  """Drops an unfinished last line of a JSON-lines file (a kill or a full disk mid-write), so
  that the next record starts on a line of its own instead of joining it."""
  try:
    with open(path, 'rb+') as f:
      data = f.read()
      if data and not data.endswith(b'\n'):
        f.truncate(data.rfind(b'\n') + 1)
        logging.warning('Dropped an unfinished last line of %s.', path)
  except FileNotFoundError:
    pass


def records(logdir):
  """The records of ``logdir/metrics.jsonl`` that read (a line cut short by a crash does
  not), oldest first."""
  path = pathlib.Path(logdir) / 'metrics.jsonl'
  found = []
  if path.exists():
    for line in path.read_text().splitlines():
      try:
        record = json.loads(line)
      except ValueError:
        continue
      if isinstance(record, dict):
        found.append(record)
  return found


def last_step_with(logdir, prefix):
  """The last step of ``logdir/metrics.jsonl`` that logged a name starting with ``prefix``
  (None: never)."""
  step = None
  for record in records(logdir):
    if any(name.startswith(prefix) for name in record):
      step = record.get('step')
  return step


class Rate:
  """Events per second since the last call (e.g. env steps per second for ``fps``)."""
  def __init__(self):
    self._time = None
    self._count = None

  def __call__(self, count):
    now = time.time()
    rate = 0.0
    if self._time is not None and now > self._time:
      rate = (count - self._count) / (now - self._time)
    self._time, self._count = now, count
    return rate
