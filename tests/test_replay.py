import os

import numpy as np
import pytest

from mummi_tf.run import replay as replay_lib


def make_episode(marker, length, image=(8, 8, 3)):
  """An episode whose rows carry their episode marker and step index."""
  return {
      'rgb': np.full((length,) + image, marker % 256, np.uint8),
      'marker': np.full((length,), marker, np.int64),
      'index': np.arange(length, dtype=np.int64),
      'action': np.zeros((length, 2), np.float32),
      'reward': np.ones((length,), np.float32),
  }


def test_save_is_atomic_and_named_like_upstream(tmp_path):
  path = replay_lib.save_episode(tmp_path, make_episode(3, 11))
  stamp, uid, length = path.stem.split('-')
  assert len(stamp) == 15 and stamp[8] == 'T'
  assert len(uid) == 32 and int(length) == 11
  assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind
  loaded = replay_lib.load_episode(path)
  np.testing.assert_array_equal(loaded['index'], np.arange(11))
  assert replay_lib.count_steps(tmp_path) == 10


def test_corrupt_and_truncated_files_are_skipped(tmp_path, caplog):
  good = replay_lib.save_episode(tmp_path, make_episode(1, 20))
  data = good.read_bytes()
  (tmp_path / ('20200101T000000-' + '0' * 32 + '-20.npz')).write_bytes(data[:len(data) // 2])
  (tmp_path / ('20200101T000001-' + '1' * 32 + '-20.npz')).write_bytes(b'not a zip file')
  replay = replay_lib.Replay(tmp_path, capacity=1000)
  assert replay.num_episodes == 1
  assert 'Skipping unreadable episode file' in caplog.text
  assert len(list((tmp_path / 'corrupt').iterdir())) == 2  # moved aside, not lost


def test_quarantine_counts_what_loads_and_moves_the_rest(tmp_path, caplog):
  good = replay_lib.save_episode(tmp_path, make_episode(1, 20))  # 20 rows: 19 steps
  data = good.read_bytes()
  bad = [
      tmp_path / ('20200101T000000-' + '0' * 32 + '-20.npz'),
      tmp_path / ('20200101T000001-' + '1' * 32 + '-20.npz'),
      tmp_path / ('20200101T000002-' + '2' * 32 + '-999.npz')
  ]  # length != name
  bad[0].write_bytes(data[:len(data) // 2])
  bad[1].write_bytes(b'')
  bad[2].write_bytes(data)
  assert replay_lib.count_steps(tmp_path) == 19 + 19 + 19 + 998  # names alone
  assert replay_lib.quarantine_unreadable(tmp_path) == (19, 1)
  assert sorted(p.name for p in (tmp_path / 'corrupt').iterdir()) == sorted(b.name for b in bad)
  assert caplog.text.count('Moved unreadable episode file') == 3
  assert replay_lib.count_steps(tmp_path) == 19


def damage_member(path, member):
  """Overwrites the middle of ``member``'s deflate data in the .npz at ``path``."""
  import zipfile
  with zipfile.ZipFile(path) as archive:
    info = archive.getinfo(member)
  data = bytearray(path.read_bytes())
  extra = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], 'little')
  start = info.header_offset + 30 + len(info.filename.encode()) + extra
  middle = start + info.compress_size // 2
  data[middle:middle + 64] = b'\xff' * 64
  path.write_bytes(bytes(data))


def test_quarantine_reads_every_member_and_keeps_the_runs_shapes(tmp_path, caplog):
  """What the step count counts, the replay can load and sample (issue 34, items 2-5): a
  damaged member other than reward, invalid deflate data, another image size, NaN rewards."""
  for i in range(3):
    replay_lib.save_episode(tmp_path, make_episode(i, 20))
  noisy = make_episode(7, 20)
  noisy['rgb'] = np.random.default_rng(0).integers(0, 256, noisy['rgb'].shape, np.uint8)
  damaged = replay_lib.save_episode(tmp_path, noisy)
  damage_member(damaged, 'rgb.npy')
  small = replay_lib.save_episode(tmp_path, make_episode(8, 20, image=(4, 4, 3)))
  nan = make_episode(9, 20)
  nan['reward'][3] = np.nan
  nan = replay_lib.save_episode(tmp_path, nan)
  assert replay_lib.quarantine_unreadable(tmp_path) == (3 * 19, 3)
  moved = {p.name for p in (tmp_path / 'corrupt').iterdir()}
  assert moved == {damaged.name, small.name, nan.name}
  for why in ('does not read', 'differ from the run', 'not all finite'):
    assert why in caplog.text, why
  replay = replay_lib.Replay(tmp_path, capacity=1000)
  assert replay.num_episodes == 3 and replay.sample(4, 8)['rgb'].shape == (4, 8, 8, 8, 3)


def test_sequences_never_cross_episodes(tmp_path):
  replay = replay_lib.Replay(tmp_path, capacity=10_000, seed=1)
  for marker, length in enumerate([5, 30, 12, 64]):
    replay.add(make_episode(marker, length))
  batch = replay.sample(256, 10)
  assert batch['rgb'].shape == (256, 10, 8, 8, 3) and batch['rgb'].dtype == np.uint8
  assert (batch['marker'] == batch['marker'][:, :1]).all()
  assert (np.diff(batch['index'], axis=1) == 1).all()
  assert 0 not in batch['marker']  # the 5-step episode is too short for a 10-step window
  # Windows are uniform: the 64-step episode holds 55 of the 77 windows.
  share = (batch['marker'][:, 0] == 3).mean()
  assert 0.55 < share < 0.9


def test_capacity_is_honoured_and_files_stay(tmp_path):
  replay = replay_lib.Replay(tmp_path, capacity=100)
  for marker in range(6):
    replay.add(make_episode(marker, 30))
  assert replay.num_steps <= 100 and replay.num_episodes == 3
  assert len(replay_lib.episode_files(tmp_path)) == 6
  assert set(replay.sample(64, 5)['marker'][:, 0]) <= {3, 4, 5}
  reloaded = replay_lib.Replay(tmp_path, capacity=100)
  assert reloaded.num_episodes == 3
  assert set(reloaded.sample(64, 5)['marker'][:, 0]) <= {3, 4, 5}


def test_too_short_episodes_give_a_clear_error(tmp_path):
  replay = replay_lib.Replay(tmp_path)
  replay.add(make_episode(0, 4))
  with pytest.raises(ValueError, match='No stored episode has 10 steps'):
    replay.sample(2, 10)


def test_tf_dataset_yields_uint8_batches(tmp_path):
  replay = replay_lib.Replay(tmp_path)
  replay.add(make_episode(7, 40))
  batch = next(iter(replay.dataset(4, 6)))
  assert batch['rgb'].shape == (4, 6, 8, 8, 3)
  assert batch['rgb'].dtype.name == 'uint8'
