"""A training logdir's own files (docs/ARCHITECTURE.md, the logdir layout): the lock that keeps
one process on it, ``run.json`` (what the run is: task, method, seed, gin files, commit, specs),
``config.gin`` (what was bound: what resume and export parse) and ``operative_config.gin``
(every parameter used), each written whole or not at all."""
import json
import pathlib
import subprocess

import gin
import numpy as np

from mummi_tf.errors import UsageError

EVAL_ONLY = 'eval_only'  # --eval_only's folder in the logdir


def lock(logdir):
  """An exclusive ``flock`` on ``logdir/.lock`` for this process's lifetime (the kernel
  drops it when the process dies, so a crashed run leaves nothing behind). Raises
  ``UsageError`` naming the holder when another run has it. Returns the open file."""
  import fcntl
  import os
  handle = open(pathlib.Path(logdir) / '.lock', 'a+')
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.seek(0)
    holder = handle.read().strip() or 'another process'
    handle.close()
    raise UsageError(f'{logdir} is in use by another run ({holder}); wait for it to '
                     'finish or use another --logdir') from None
  handle.seek(0)
  handle.truncate()
  handle.write(f'pid {os.getpid()}\n')
  handle.flush()
  return handle


def run_record(task, method, seed, gin_files, action_repeat, obs_spec, action_spec):
  """``run.json``'s content."""
  return {
      'task': task,
      'method': method,
      'seed': seed,
      'gin_files': list(gin_files),
      'commit': source_commit(),
      'action_repeat': action_repeat,
      'obs_spec': spec_dict(obs_spec),
      'action_spec': {
          'shape': list(action_spec.shape),
          'minimum': np.broadcast_to(action_spec.minimum, action_spec.shape).tolist(),
          'maximum': np.broadcast_to(action_spec.maximum, action_spec.shape).tolist()
      }
  }


def write_run_files(logdir, record):
  """``run.json``, ``config.gin`` (the bindings as bound) and ``operative_config.gin``."""
  _write_text(logdir / 'run.json', json.dumps(record, indent=2))
  _write_text(logdir / 'config.gin', gin.config_str())
  write_operative_config(logdir)


def write_operative_config(logdir):
  """Every parameter the run has used so far, defaults included (gin's operative config);
  rewritten when the run closes."""
  _write_text(logdir / 'operative_config.gin', gin.operative_config_str())


def spec_dict(spec):
  return {k: [list(v.shape), np.dtype(v.dtype).name] for k, v in spec.items()}


def source_commit():
  """The git commit of the checkout this package runs from, ``-dirty`` appended when its
  tracked files differ from it (what a result's table records); None outside a checkout."""
  root = pathlib.Path(__file__).resolve().parents[2]
  try:
    done = subprocess.run([
        'git', '-C',
        str(root), 'describe', '--always', '--dirty', '--abbrev=12', '--exclude=*'
    ], capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.SubprocessError):
    return None
  return done.stdout.strip() or None if done.returncode == 0 else None


def _write_text(path, text):
  tmp = path.with_suffix(path.suffix + '.tmp')
  tmp.write_text(text)
  tmp.replace(path)
