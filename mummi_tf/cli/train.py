"""The main job: ``python -m mummi_tf.cli.train --task T --logdir L --gin_file F --gin_binding B``.

The paper's appendix A schedule (the prior code's, which matches upstream Dreamer): prefill
with random actions, then alternately ``train_steps`` updates (world model, then actor and
value in imagination) and ``train_every`` env steps of collection with exploration noise;
evaluation at every missing rate every ``eval_every`` env steps. Rerunning the same command
resumes: the env step count comes from the episode files, the networks, optimisers and
counters from the latest checkpoint.
"""

import argparse
import json
import pathlib
import sys
import tempfile

import gin
import numpy as np

from mummi_tf import gin_files
from mummi_tf import envs as envs_lib
from mummi_tf.cli import import_tensorflow_quietly
from mummi_tf.errors import UsageError

REPO = pathlib.Path(__file__).resolve().parents[2]  # a source checkout's root


def parse_args(argv):
  parser = argparse.ArgumentParser(prog='python -m mummi_tf.cli.train', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      '--task', default=None,
      help=f"one of {', '.join(envs_lib.all_tasks())} (upstream's names, e.g. dmc_walker_walk, "
      "also); default: the logdir's own (run.json), else walker_stand")
  parser.add_argument('--logdir', required=True, type=pathlib.Path)
  parser.add_argument(
      '--gin_file', '--gin_files', action='append', default=[],
      help=f"gin file name in gin/ ({', '.join(gin_files.available())}) or a "
      'path; repeatable, applied in order (a method file first)')
  parser.add_argument('--gin_binding', '--gin_bindings', action='append', default=[],
                      help="extra binding, e.g. 'Trainer.steps = 1e5'; repeatable")
  parser.add_argument('--seed', type=int, default=None,
                      help="default: the logdir's own (run.json), else 0")
  parser.add_argument('--steps', type=float, default=None, help='total env steps')
  parser.add_argument('--eval_only', action='store_true',
                      help='evaluate the latest checkpoint at every missing rate; no training')
  parser.add_argument('--eval_episodes', type=int, default=10,
                      help='episodes per condition with --eval_only (paper: 10 per seed)')
  return parser.parse_args(argv)


def from_logdir(args):
  """An existing run supplies what the command leaves out: its task (run.json) and, when
  no --gin_file is given, its gin configuration (config.gin), so ``--logdir L`` alone
  resumes or evaluates L."""
  run, config = args.logdir / 'run.json', args.logdir / 'config.gin'
  saved = {}
  complete = args.task is not None and args.seed is not None and args.gin_file
  if run.is_file():
    try:
      saved = json.loads(run.read_text())
    except ValueError:
      if not complete:  # with all three the run rewrites the file
        raise UsageError(f'{run} is damaged (not JSON): restore it, or pass --task, --seed and '
                         '--gin_file as the run was started') from None
  elif config.is_file() and not complete:
    raise UsageError(f'{args.logdir} holds a run (config.gin) but no run.json: pass --task, '
                     '--seed and --gin_file as the run was started to resume it')
  if args.task is None:
    args.task = saved.get('task', 'walker_stand')
  if args.seed is None:
    args.seed = int(saved.get('seed', 0))
  if not args.gin_file and config.is_file():
    args.gin_file = [str(config)]
    args.gin_names = saved.get('gin_files', [])
  return args


def configure(args):
  """Validates the task and the gin configuration; raises UsageError on bad input."""
  from_logdir(args)
  if args.steps is not None and not (np.isfinite(args.steps) and args.steps >= 1):
    raise UsageError(f'--steps must be a finite number of env steps >= 1, got {args.steps}')
  if args.eval_episodes < 1:
    raise UsageError(f'--eval_episodes must be >= 1, got {args.eval_episodes}')
  args.task = envs_lib.canonical_task(args.task)  # upstream's dmc_walker_walk too
  if args.task not in envs_lib.TASKS:
    raise UsageError(f'unknown task {args.task!r}; valid: {", ".join(envs_lib.TASKS)}')
  files = [gin_files.resolve(name) for name in args.gin_file]
  family = gin_files.family_file(args.task)
  files = ([family] if family else []) + files
  bindings = list(args.gin_binding)
  if args.steps is not None:
    bindings.append(f'Trainer.steps = {int(args.steps)}')
  import_tensorflow_quietly()
  from mummi_tf.model import world_model
  from mummi_tf.run import trainer  # noqa: F401  (registers the configurables; imports TF)
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings([str(f) for f in files], bindings)
  except (ValueError, KeyError, SyntaxError, TypeError) as e:
    message = ' '.join(str(e).split())
    raise UsageError(f'bad gin configuration: {message}') from None
  world_model.check_method()
  check_env_options(args.task)
  return files, bindings


def check_env_options(task):
  """The environments' gin options, training's and every evaluation condition's, checked
  before any worker starts."""
  from mummi_tf.run import evaluation
  names = ('modalities', 'missing', 'missing_mode', 'action_repeat', 'time_limit', 'remove')
  options = {name: envs_lib.configured(name) for name in names}
  try:
    envs_lib.check(task, **options)
    for condition in evaluation.conditions().values():
      envs_lib.check(task, **{**options, **condition})
    evaluation.Evaluator(task, seed=0)  # its gin options (starts no worker)
  except (ValueError, TypeError) as e:
    raise UsageError(f'bad environment option: {" ".join(str(e).split())}') from None


def check_writable(logdir):
  """A logdir must be a folder this process can create files in (probed, then removed)."""
  if logdir.exists() and not logdir.is_dir():
    raise UsageError(f'--logdir {logdir} is a file, not a folder')
  parent = logdir
  while not parent.exists():
    parent = parent.parent
  if not parent.is_dir():
    raise UsageError(f'--logdir {logdir}: {parent} is a file, not a folder')
  try:
    tempfile.TemporaryDirectory(dir=parent).cleanup()
  except OSError as e:
    raise UsageError(f'--logdir {logdir} is not writable ({parent}: '
                     f'{e.strerror or e})') from None


def check_logdir(args):
  """Refuses to resume a logdir made with another task or method."""
  from mummi_tf.model import world_model
  check_writable(args.logdir)
  run = args.logdir / 'run.json'
  if not run.exists():
    if args.eval_only and not args.logdir.exists():
      raise UsageError(f'{args.logdir} does not exist: give the logdir of a training run')
    if args.eval_only:
      raise UsageError(f'{args.logdir} holds no run to evaluate (no run.json)')
    return
  try:
    saved = json.loads(run.read_text())
  except ValueError:  # damaged: the flags were all given (from_logdir), the run rewrites it
    return
  for key, value in (('task', args.task), ('method', world_model.configured_method())):
    if saved.get(key) != value:
      raise UsageError(f'{args.logdir} was made with {key} {saved.get(key)!r}, not {value!r}; '
                       'use another --logdir')


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    configure(args)
    check_logdir(args)
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  from mummi_tf.run import checkpoints
  from mummi_tf.run import trainer
  names = getattr(args, 'gin_names', None)
  runner = trainer.Trainer(
      logdir=args.logdir, task=args.task, seed=args.seed,
      gin_files=names if names is not None else [pathlib.Path(n).stem for n in args.gin_file])
  try:
    if not args.eval_only:
      return runner.run()
    results = runner.evaluate_only(args.eval_episodes)
  except (UsageError, checkpoints.CheckpointError) as e:  # e.g. the logdir is in use
    print(f'error: {e}', file=sys.stderr)
    return 2
  for name, returns in results.items():
    print(f'test/return_{name}: {np.mean(returns):.1f} ± {np.std(returns):.1f} '
          f'({len(returns)} episodes)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
