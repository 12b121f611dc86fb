"""Figure 7: end-to-end training throughput, env steps per second, from `metrics.jsonl`'s
`fps` of a short `python -m mummi_tf.train` run at quick dims and at paper dims."""
import json
import pathlib
import tempfile

from bench import report
from bench import runner

UNIT = 'env steps/s'


def run(label, task, gin_files, schedule, windows, timeout, extra=()):
  """A run of `windows + 1` logged windows of `schedule['window']` env steps after
  prefill; the first trained window (tracing) is dropped, the rest are the repeats."""
  prefill, window = schedule['prefill'], schedule['window']
  steps = prefill + (windows + 1) * window
  bindings = [
      f'Trainer.prefill = {prefill}', f'Trainer.train_every = {window}',
      f'Trainer.log_every = {window}', f'Trainer.train_steps = {schedule["updates"]}',
      'Trainer.eval_every = 1000000000', f'Trainer.steps = {steps}',
      "mummi_tf.evaluation.conditions.levels = ('none',)"
  ] + list(extra)
  name = f'train/{label}'
  with tempfile.TemporaryDirectory() as tmp:
    args = ['-m', 'mummi_tf.train', '--task', task, '--logdir', pathlib.Path(tmp) / 'run']
    for f in gin_files:
      args += ['--gin_file', f]
    for b in bindings:
      args += ['--gin_binding', b]
    _, error = runner.run(args, timeout)
    metrics = pathlib.Path(tmp) / 'run' / 'metrics.jsonl'
    lines = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.exists() else []
  fps = [x['fps'] for x in lines if 'fps' in x and x['step'] > prefill + window]
  if not fps:
    return report.failed(name, UNIT, None, error or 'no fps in metrics.jsonl')
  return report.figure(
      name, fps, UNIT,
      notes=f'{task}, gin {"+".join(gin_files)}, {schedule["updates"]} updates per '
      f'{window} env steps (collection with the training policy + updates), fps of '
      f'each logged window after the first trained one (tracing); bindings: '
      f'{"; ".join(bindings[:4] + list(extra))}' + (f'; run ended with: {error}' if error else ''),
      schedule=schedule)
