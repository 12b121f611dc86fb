"""The trainer's wall-time split (mummi_tf/run/timing.py): exclusive nested sections, windows,
and per-core idle fractions from /proc/stat."""
import time

import pytest

from mummi_tf.run import timing


def test_nested_sections_count_only_their_own_time():
  clock = timing.Clock(('env', 'update'))
  with clock('env'):
    time.sleep(0.02)
    with clock('update'):
      time.sleep(0.03)
  time.sleep(0.01)
  split = clock.window()
  assert split['update'] == pytest.approx(0.03, abs=0.02)
  assert split['env'] == pytest.approx(0.02, abs=0.02)
  assert split['other'] == pytest.approx(0.01, abs=0.02)
  assert split['env'] + split['update'] + split['other'] == pytest.approx(split['wall'])
  assert clock.window()['env'] == 0  # a new window
  with pytest.raises(KeyError):
    clock('nope')
  with clock('env'), pytest.raises(RuntimeError, match='inside a section'):
    clock.window()


def test_idle_fraction_per_core_from_proc_stat(tmp_path, monkeypatch):
  stat = tmp_path / 'stat'
  monkeypatch.setattr(timing.os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
  line = 'cpu{} {} 0 {} {} {} 0 0 0 0 0\n'  # user nice system idle iowait ...
  stat.write_text('cpu 0 0 0 0 0 0 0 0 0 0\n' + line.format(0, 100, 0, 100, 0) +
                  line.format(1, 100, 0, 100, 0) + line.format(2, 0, 0, 0, 0) + 'intr 5\n')
  idle = timing.CpuIdle(stat)
  # core 0: 30 busy + 60 idle + 10 iowait; core 1: 100 busy; core 2 is not ours.
  stat.write_text(
      line.format(0, 120, 10, 160, 10) + line.format(1, 150, 50, 100, 0) +
      line.format(2, 0, 0, 50, 0))
  assert idle.window() == pytest.approx({0: 0.7, 1: 0.0})
  assert timing.CpuIdle(tmp_path / 'missing').window() == {}
