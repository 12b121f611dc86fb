"""Figure 7: end-to-end training throughput, env steps per second, from `metrics.jsonl`'s
`fps` of a short `python -m mummi_tf.cli.train` run at quick dims and at paper dims, with where
each window's wall time went (the trainer's `time/*` split) and each core's idle fraction
(`cpu_idle/*`)."""
import json
import pathlib
import statistics
import tempfile

from bench import report
from bench import runner
from mummi_tf.run import timing

UNIT = 'env steps/s'
SPLIT = timing.SECTIONS + ('other',)  # metrics.jsonl's time/<name>


def run(label, task, gin_files, schedule, windows, timeout, extra=()):
  """A run of `windows + 1` logged windows of `schedule['window']` env steps after
  prefill; the first trained window (tracing) is dropped, the rest are the repeats."""
  prefill, window = schedule['prefill'], schedule['window']
  bindings = [
      f'Trainer.prefill = {prefill}', f'Trainer.train_every = {window}',
      f'Trainer.log_every = {window}', f'Trainer.train_steps = {schedule["updates"]}',
      'Trainer.eval_every = 1000000000', f'Trainer.steps = {prefill + (windows + 1) * window}',
      "mummi_tf.evaluation.conditions.levels = ('none',)"
  ] + list(extra)
  name = f'train/{label}'
  lines, repeat, error = train_lines(task, gin_files, bindings, timeout)
  timed = [x for x in lines if 'fps' in x and x['step'] > prefill + window]
  if not timed:
    return report.failed(name, UNIT, None, error or 'no fps in metrics.jsonl')
  split = time_split(timed, window // repeat)
  return report.figure(
      name, [x['fps'] for x in timed], UNIT,
      notes=f'{task}, gin {"+".join(gin_files)}, {schedule["updates"]} updates per '
      f'{window} env steps (collection with the training policy + updates), fps of '
      f'each logged window after the first trained one (tracing); bindings: '
      f'{"; ".join(bindings[:4] + list(extra))}; {split_note(split)}' +
      (f'; run ended with: {error}' if error else ''), schedule=schedule, **split)


def train_lines(task, gin_files, bindings, timeout):
  """`python -m mummi_tf.cli.train` in a temporary logdir, as a user runs it; returns its
  metrics.jsonl lines, its action repeat and the error that ended it ('' if none)."""
  with tempfile.TemporaryDirectory() as tmp:
    args = ['-m', 'mummi_tf.cli.train', '--task', task, '--logdir', pathlib.Path(tmp) / 'run']
    for f in gin_files:
      args += ['--gin_file', f]
    for b in bindings:
      args += ['--gin_binding', b]
    _, error = runner.run(args, timeout)
    metrics = pathlib.Path(tmp) / 'run' / 'metrics.jsonl'
    lines = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.exists() else []
    run_file = pathlib.Path(tmp) / 'run' / 'run.json'
    repeat = json.loads(run_file.read_text())['action_repeat'] if run_file.exists() else 2
  return lines, repeat, error


def time_split(lines, agent_steps):
  """Medians over the windows of the trainer's split (docs/ARCHITECTURE.md): seconds and
  fraction of the wall time per section, each core's idle fraction, and the collection
  policy's ms per agent step (`agent_steps` per window); {} when the lines have none."""
  if not all('time/wall' in x for x in lines):
    return {}
  median = lambda key: statistics.median(x.get(key, 0.0) for x in lines)
  cores = sorted({k for x in lines for k in x if k.startswith('cpu_idle/')},
                 key=lambda k: int(k.split('/')[1]))
  return {
      'wall_s': median('time/wall'),
      'split_s': {
          name: median(f'time/{name}') for name in SPLIT
      },
      'split_fraction': {
          name: statistics.median(x.get(f'time/{name}', 0.0) / x['time/wall'] for x in lines)
          for name in SPLIT
      },
      'cpu_idle': {
          k.split('/')[1]: median(k) for k in cores
      },
      'policy_ms_per_agent_step': median('time/policy') / max(1, agent_steps) * 1e3
  }


def split_note(split):
  """One clause for the notes: where the window's wall time went, and the idle cores."""
  if not split:
    return 'no time split in metrics.jsonl'
  parts = ', '.join(
      f'{name} {fraction:.0%}'
      for name, fraction in sorted(split['split_fraction'].items(), key=lambda kv: -kv[1])
      if fraction >= 0.005)
  idle = ', '.join(f'{v:.0%}' for v in split['cpu_idle'].values()) or 'not read (no /proc/stat)'
  return (f'wall time per window (median {split["wall_s"]:.3g} s): {parts}; collection policy '
          f'{split["policy_ms_per_agent_step"]:.3g} ms per agent step; idle per core {idle} '
          '(the whole machine, other processes included)')
