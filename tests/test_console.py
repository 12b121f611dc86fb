"""The run's console lines (mummi_tf/run/console.py): durations never read '0 min', an evaluation's
line counts its episodes as a reader would."""
import io

from mummi_tf.run import console


def test_durations_in_words():
  assert console.duration(0) == 'about 1 s' and console.duration(14.2) == 'about 14 s'
  assert console.duration(600) == 'about 10 min' and console.duration(2.5 * 3600) == 'about 2.5 h'
  assert console.duration(3 * 86400).startswith('about 3 days on this machine: for a first run')
  assert console.duration(95, '') == '2 min'


def test_an_evaluation_line_names_each_level_and_its_episodes():
  one = console.evaluation_line(3000, {'none': [174.0], 'medium': [161.0], 'high': [177.0]})
  assert one == 'eval at 3000 env steps: none 174 ± 0 · medium 161 ± 0 · high 177 ± 0 (1 episode each)'
  alone = console.evaluation_line(10, {'none': [1.0, 3.0]})
  assert alone == 'eval at 10 env steps: none 2 ± 1 (2 episodes)'


def test_a_bar_written_to_a_file_redraws_rarely():
  """`nohup make sweep … > log`: the sweep refreshes its postfix every second; a file gets the
  bar once a minute, not 3 600 times an hour (a terminal still gets every change)."""
  log = io.StringIO()
  bar = console.progress_bar(total=12, file=log, desc='sweep')
  for i in range(200):
    console.set_postfix(bar, f'{i} running')
  draws = log.getvalue().count('\r')
  assert 1 <= draws <= 3, draws
  assert bar.mininterval == console.LOG_FILE_REDRAW_S


def test_the_cost_estimates_add_updates_and_collection():
  """The first estimate: 2 s per update × 0.1 updates per env step × 1000 steps, plus 1000 steps
  at the prefill's 20 env steps/s = 250 s; the measured one divides by the rate."""
  assert console.update_estimate(2.0, 0.1, 1000, 20.0) == (
      "updates take 2.00 s each here: with them and collection at the prefill's 20 env steps/s, "
      'the remaining 1000 env steps take at least 4 min (evaluations extra)')
  assert console.update_estimate(2.0, 0.1, 1000).endswith('take at least 3 min (evaluations extra)')
  assert console.rate_estimate(
      12.8,
      52000) == ('12.8 env steps/s with updates: the remaining 52000 env steps take about 1.1 h')
