"""The loop's schedules (mummi_tf/run/schedule.py): intervals that survive a resume, updates
spread over a round that add up to the round's count however it is stepped."""
import pytest

from mummi_tf.run import schedule


def test_every_fires_once_per_new_multiple_and_a_resume_counts_from_its_own_step():
  every = schedule.Every(1000)
  assert [s for s in range(0, 5001, 250) if every(s)] == [1000, 2000, 3000, 4000, 5000]
  resumed = schedule.Every(1000, step=3000)  # the last session saved at 3000
  assert not resumed(3000) and not resumed(3999) and resumed(4200) and not resumed(4800)
  jumped = schedule.Every(1000)
  assert jumped(3500) and not jumped(3999)  # one event for a jump over several multiples
  with pytest.raises(ValueError):
    schedule.Every(0)


def test_spread_gives_exactly_its_total_evenly_whatever_the_stride():
  for total, length, stride in ((100, 500, 1), (100, 500, 4), (3, 10, 3), (7, 1, 1), (5, 60, 7)):
    spread = schedule.Spread(total, length)
    counts = [spread(done) for done in range(stride, length + stride, stride)]
    assert sum(counts) == total, (total, length, stride)
    assert max(counts) <= -(-total * stride // length) + 1  # even: no burst at the end
  spread = schedule.Spread(10, 100)
  assert spread(50) == 5 and spread(50) == 0 and spread(200) == 5 and spread(300) == 0
