"""Episode replay in the upstream Dreamer layout.

Each completed episode is one compressed ``.npz`` in ``logdir/episodes/`` named
``{YYYYmmddTHHMMSS}-{uuid4 hex}-{length}.npz`` and written atomically (temporary file, fsync,
rename), so a crash never leaves a half-written episode under a real name. RAM holds the newest
episodes up to a capacity in steps; older ones are evicted from memory but stay on disk.
Training batches are ``B`` sequences of ``T`` steps, each drawn uniformly among all windows that
lie inside one episode (no sequence crosses an episode boundary); images stay ``uint8``.
"""

import collections
import datetime
import io
import logging
import os
import pathlib
import threading
import uuid
import zipfile
import zlib

import gin
import numpy as np

SUFFIX = '.npz'
# What a damaged .npz raises when read: truncated, not a zip, a member's deflate data or CRC
# invalid (zlib.error, zipfile.BadZipFile), a member missing (KeyError).
READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error)


def episode_length(episode):
  return len(episode['reward'])


def save_episode(directory, episode):
  """Writes ``episode`` atomically; returns its path."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  stamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
  path = directory / f'{stamp}-{uuid.uuid4().hex}-{episode_length(episode)}{SUFFIX}'
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **episode)
  tmp = directory / f'.{path.name}.tmp'
  with open(tmp, 'wb') as f:
    f.write(buffer.getvalue())
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


def load_episode(path):
  """Reads one episode file; a truncated or corrupt file gives ``None`` and a warning."""
  try:
    with np.load(path) as data:
      episode = {key: data[key] for key in data.files}
    lengths = {len(value) for value in episode.values()}
    if len(lengths) != 1 or 'reward' not in episode:
      raise ValueError(f'keys of unequal length or no reward: {sorted(episode)}')
    return episode
  except READ_ERRORS as e:
    logging.warning('Skipping unreadable episode file %s (%s).', path, e)
    return None


def episode_files(directory):
  """Episode files, oldest first (name timestamp, then modification time within a second)."""
  directory = pathlib.Path(directory)
  if not directory.exists():
    return []
  return sorted(
      directory.glob('*' + SUFFIX), key=lambda p: (p.name.split('-', 1)[0], p.stat().st_mtime_ns))


def length_from_name(path):
  try:
    return int(pathlib.Path(path).stem.rsplit('-', 1)[-1])
  except ValueError:
    return 0


def count_steps(directory):
  """Agent steps stored in ``directory``, from the file names (reset steps excluded)."""
  return sum(max(length_from_name(p) - 1, 0) for p in episode_files(directory))


def check_episode(path):
  """``(length, signature)`` of an episode file that reads whole, where ``signature`` is
  ``{key: (shape of one step, dtype)}``; raises ``ValueError`` saying what is wrong: a member
  that does not decompress, keys of unequal length, a length other than the name's, a
  non-finite reward."""
  try:
    with np.load(path) as data:
      episode = {key: data[key] for key in data.files}
  except READ_ERRORS as e:
    raise ValueError(f'it does not read ({type(e).__name__}: {e})') from None
  lengths = {len(value) for value in episode.values()}
  if 'reward' not in episode or len(lengths) != 1:
    raise ValueError(f'no reward or keys of unequal length: {sorted(episode)}')
  length = lengths.pop()
  if length != length_from_name(path):
    raise ValueError(f'its length {length} does not match the name')
  if not np.all(np.isfinite(episode['reward'])):
    raise ValueError('its rewards are not all finite')
  return length, {k: (v.shape[1:], v.dtype.str) for k, v in sorted(episode.items())}


def quarantine_unreadable(directory):
  """Moves the episode files a run cannot train on into ``directory/corrupt/``, one warning
  each, and returns the number of agent steps (reset steps excluded) and of episodes that
  remain: what the step count and the replay can both use.

  Each file is read whole (``check_episode``: every member decompresses, lengths agree with
  the name, rewards are finite), and its keys' per-step shapes and dtypes must be those of
  most episodes of the run (an image of another size, a missing modality).
  """
  directory = pathlib.Path(directory)
  checked = []
  for path in episode_files(directory):
    try:
      checked.append((path, *check_episode(path)))
    except ValueError as e:
      _move_aside(path, str(e))
  keys = [repr(signature) for _, _, signature in checked]
  common = collections.Counter(keys).most_common(1)[0][0] if keys else None
  steps = episodes = 0
  for (path, length, signature), key in zip(checked, keys):
    if key != common:
      _move_aside(path, f'its keys, shapes or dtypes {signature} differ from the run\'s')
      continue
    steps += max(length - 1, 0)
    episodes += 1
  return steps, episodes


def _move_aside(path, why):
  corrupt = path.parent / 'corrupt'
  corrupt.mkdir(exist_ok=True)
  os.replace(path, corrupt / path.name)
  logging.warning('Moved unreadable episode file %s to %s/ (%s).', path.name, corrupt, why)


@gin.configurable(denylist=['directory'])
class Replay:
  """Episodes on disk plus the newest ``capacity`` steps of them in RAM."""
  def __init__(self, directory, capacity=1_000_000, seed=0):
    self.directory = pathlib.Path(directory)
    self.capacity = int(capacity)
    self._episodes = collections.OrderedDict()
    self._steps = 0
    self._lock = threading.Lock()
    self._rng = np.random.default_rng(seed)
    self._load_existing()

  def _load_existing(self):
    """Loads the newest files that fit in the capacity, newest first."""
    loaded = []
    total = 0
    for path in reversed(episode_files(self.directory)):
      if total >= self.capacity:
        break
      episode = load_episode(path)
      if episode is None:
        _move_aside(path, 'it does not load')
      else:
        loaded.append((path.stem, episode))
        total += episode_length(episode)
    for key, episode in reversed(loaded):
      self._store(key, episode)

  def _store(self, key, episode):
    with self._lock:
      self._episodes[key] = episode
      self._steps += episode_length(episode)
      while self._steps > self.capacity and len(self._episodes) > 1:
        _, old = self._episodes.popitem(last=False)
        self._steps -= episode_length(old)

  def add(self, episode):
    """Saves ``episode`` to disk, then keeps it in RAM (evicting the oldest)."""
    path = save_episode(self.directory, episode)
    self._store(path.stem, episode)
    return path

  @property
  def num_steps(self):
    return self._steps

  @property
  def num_episodes(self):
    return len(self._episodes)

  def nbytes(self):
    return sum(v.nbytes for ep in self._episodes.values() for v in ep.values())

  def can_sample(self, length):
    """Whether an episode in memory holds a window of ``length`` steps."""
    with self._lock:
      return any(episode_length(e) >= length for e in self._episodes.values())

  def sample(self, batch, length):
    """A dict of ``(batch, length, ...)`` arrays, each row a window inside one episode."""
    with self._lock:
      episodes = [e for e in self._episodes.values() if episode_length(e) >= length]
      if not episodes:
        raise ValueError(
            f'No stored episode has {length} steps to sample a sequence from '
            f'({self.num_episodes} episodes in memory); collect more or lower the length.')
      windows = np.array([episode_length(e) - length + 1 for e in episodes], np.float64)
      which = self._rng.choice(len(episodes), size=batch, p=windows / windows.sum())
      starts = (self._rng.random(batch) * windows[which]).astype(np.int64)
      rows = [{k: v[s:s + length] for k, v in episodes[i].items()} for i, s in zip(which, starts)]
    return {k: np.stack([row[k] for row in rows]) for k in rows[0]}

  def dataset(self, batch, length, prefetch=2):
    """A ``tf.data`` pipeline of batches from :meth:`sample`.

    ``prefetch`` > 0 samples that many batches ahead in a background thread: faster, but then
    which episodes a batch can contain depends on timing. With 0 each batch is sampled when it
    is taken, so a seeded run is reproducible.
    """
    import tensorflow as tf  # Replay itself stays usable without TF.
    example = self.sample(1, length)
    signature = {
        k: tf.TensorSpec((batch, length) + v.shape[2:], v.dtype) for k, v in example.items()
    }

    def generator():
      while True:
        yield self.sample(batch, length)

    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    return dataset.prefetch(prefetch) if prefetch else dataset
