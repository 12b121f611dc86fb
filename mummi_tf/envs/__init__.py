"""Environments of the paper's Sec. V behind one entry point, `make(task, **options)`.

Suite modules (`dmc`, `robosuite_wipe`, `toy2d`) follow the suite-module contract of
docs/ARCHITECTURE.md and are imported only when one of their tasks is made. Nothing here
imports TensorFlow: environments render with Mesa, which TF breaks (see `worker.py`).
"""
import importlib
import inspect

import gin
import numpy as np

from mummi_tf.envs import missing as _missing
from mummi_tf.envs import wrappers
from mummi_tf.envs.missing import missing_fraction  # noqa: F401  (for training logs)

# suite module -> its TASKS. dmc's are listed here so that listing tasks never imports
# dm_control (and its GL libraries) into a TF process (checked against dmc.TASKS in tests);
# None: read from the module, which imports without its optional dependencies.
SUITES = {
    'dmc': ('walker_stand', 'walker_walk', 'walker_run', 'finger_spin', 'cup_catch'),
    'robosuite_wipe': None,
    'toy2d': None,
}


def _suite_tasks(suite):
  tasks = SUITES[suite]
  if tasks is None:
    try:
      tasks = tuple(importlib.import_module(f'mummi_tf.envs.{suite}').TASKS)
    except ImportError:
      tasks = ()
  return tasks


def all_tasks():
  """Every known task (also `mummi_tf.envs.TASKS`)."""
  return tuple(t for suite in SUITES for t in _suite_tasks(suite))


def __getattr__(name):
  if name == 'TASKS':
    return all_tasks()
  raise AttributeError(name)


def canonical_task(task):
  """Our name of `task`: upstream Dreamer's `dmc_walker_walk` is our `walker_walk`."""
  if isinstance(task, str) and task.startswith('dmc_') and task[4:] in SUITES['dmc']:
    return task[4:]
  return task


def suite_of(task):
  """Name of the suite module that provides `task` (ours or upstream's name)."""
  task = canonical_task(task)
  for suite in SUITES:
    if task in _suite_tasks(suite):
      return suite
  raise ValueError(f'unknown task {task!r}; valid: {", ".join(all_tasks())}')


def import_suite(suite):
  try:
    return importlib.import_module(f'mummi_tf.envs.{suite}')
  except ImportError as e:
    extra = ' (run tools/install_robosuite.sh)' if suite == 'robosuite_wipe' else ''
    raise ImportError(f'environment suite {suite!r} needs a missing dependency{extra}: '
                      f'{e}') from e


def build(task, size=(64, 64), modalities=None, seed=None, action_repeat=2, time_limit=1000,
          missing='train', missing_mode='paper', max_segment=14, remove=(), **suite_options):
  """The in-process wrapped env (what the worker runs): suite env -> ActionRepeat ->
    NormalizeActions -> TimeLimit -> MissingSensors. Called with explicit arguments only."""
  module = import_suite(suite_of(task))
  seeds = np.random.SeedSequence(seed).generate_state(2) if seed is not None else (None, None)
  env = module.load(task, size=tuple(size), modalities=modalities, seed=seeds[0], **suite_options)
  env = wrappers.ActionRepeat(env, action_repeat)
  env = wrappers.NormalizeActions(env)
  steps = max(1, time_limit // action_repeat)
  env = wrappers.TimeLimit(env, steps)
  requested = set(modalities or ())
  names = [
      k for k in env.observation_spec()
      if not k.endswith('_flag') and (k != 'state' or 'state' in requested)
  ]  # `state`: a sensor only on request
  env = wrappers.MissingSensors(env, names, missing_mode, missing, max_segment, remove,
                                length=steps + 1, seed=seeds[1])
  return env


def check(task, modalities=None, missing='train', missing_mode='paper', action_repeat=2,
          time_limit=1000, remove=(), **_):
  """Validates `make`'s options of `task` without a worker or a simulator (so bad input is
    refused before anything runs). Returns the modalities; ValueError naming what is valid."""
  task = canonical_task(task)
  chosen = import_suite(suite_of(task)).check(task, modalities)
  _missing.resolve_rate(missing_mode, missing)
  if not (isinstance(action_repeat, int) and action_repeat >= 1):
    raise ValueError(f'action_repeat must be an integer >= 1, got {action_repeat!r}')
  if not (isinstance(time_limit, int) and time_limit >= action_repeat):
    raise ValueError(f'time_limit must be an integer >= action_repeat ({action_repeat}) '
                     f'env steps, got {time_limit!r}')
  unknown = [m for m in remove if m not in chosen]
  if unknown:
    raise ValueError(f'cannot remove {unknown}: not among the modalities '
                     f'{", ".join(chosen)}')
  return chosen


def suite_defaults(suite):
  """The gin bindings of `mummi_tf.envs.<suite>.load` in this process (resolved here so a
    worker process, which has no gin config, gets them as explicit arguments)."""
  try:
    return dict(gin.get_bindings(f'mummi_tf.envs.{suite}.load'))
  except (ValueError, KeyError):  # not registered: the suite module is not imported
    return {}


def configured(name):
  """The value ``make`` will use for its parameter ``name`` (the gin binding, else the default)."""
  try:
    return gin.query_parameter(f'mummi_tf.envs.make.{name}')
  except ValueError:
    return inspect.signature(make).parameters[name].default


@gin.configurable(module='mummi_tf.envs')
def make(task=None, size=(64, 64), modalities=None, seed=None, action_repeat=2, time_limit=1000,
         missing='train', missing_mode='paper', max_segment=14, remove=(), process=True,
         suite_options=None, **options):
  """The fully wrapped `dm_env.Environment` of `task` (docs/ARCHITECTURE.md).

    Args:
      task: one of `TASKS`.
      size: (H, W) of image modalities, pixels.
      modalities: subset of the suite's modalities (None: all).
      seed: seeds the suite, the backgrounds and the missing-sensor masks.
      action_repeat: env steps per agent step (paper: 2).
      time_limit: env steps per episode (paper: 1000).
      missing: missing level ('none' | 'train' | 'medium' | 'high') or rate in [0, 1).
      missing_mode: 'paper' (exact fraction per episode) or 'reference' (prior code).
      max_segment: longest missing segment, agent steps.
      remove: modalities missing for whole episodes (e.g. ('workspace',)).
      process: run the env in a TF-free worker process (default; required once TF is
        imported in this process); False builds it in this process.
      suite_options / **options: forwarded to the suite's `load` (e.g. shadows, camera,
        background, split for Natural MuJoCo) on top of its gin bindings.
    """
  task = canonical_task(task)
  suite = suite_of(task)  # validate before starting a worker
  _missing.resolve_rate(missing_mode, missing)
  kwargs = dict(task=task, size=tuple(size),
                modalities=None if modalities is None else tuple(modalities), seed=seed,
                action_repeat=action_repeat, time_limit=time_limit, missing=missing,
                missing_mode=missing_mode, max_segment=max_segment, remove=tuple(remove), **{
                    **suite_defaults(suite),
                    **dict(suite_options or {}),
                    **options
                })
  if process:
    from mummi_tf.envs import worker
    env = worker.EnvProcess('mummi_tf.envs:build', kwargs)
  else:
    env = build(**kwargs)
  return env
