"""Restoring the newest checkpoint that reads, for training, ``--eval_only`` and export.

A checkpoint whose files were truncated or damaged (a full disk, a copy cut short) must not
block a run while an older one is intact: ``restore_newest`` tries ``ckpt-N`` from the
highest N down, warns once for each that fails (which one, and why) and returns the first
that restores. The files are left where they are; ``tf.train.CheckpointManager`` deletes
old ones as training saves new ones.
"""
import logging
import pathlib
import re
import shutil

_NAME = re.compile(r'ckpt-(\d+)\.index')


class CheckpointError(Exception):
  """Checkpoints exist but none restores."""


def candidates(directory):
  """Checkpoint prefixes ``directory/ckpt-N`` with an index file, newest (largest N) first.

  Read from the files themselves, not from the ``checkpoint`` state file, which can be
  damaged like any other.
  """
  found = []
  for path in pathlib.Path(directory).glob('ckpt-*.index'):
    match = _NAME.fullmatch(path.name)
    if match:
      found.append((int(match.group(1)), str(path.with_suffix(''))))
  return [prefix for _, prefix in sorted(found, reverse=True)]


def remove_unfinished(directory):
  """Deletes the ``ckpt-N_temp*`` folders a checkpoint write killed mid-way leaves behind
  (TF writes there, then renames); returns their names."""
  removed = []
  for path in sorted(pathlib.Path(directory).glob('ckpt-*_temp*')):
    if path.is_dir():
      shutil.rmtree(path, ignore_errors=True)
      removed.append(path.name)
      logging.warning('Removed %s, a checkpoint write cut short.', path)
  return removed


def step_of(prefix):
  """N of ``.../ckpt-N``."""
  return int(str(prefix).rsplit('-', 1)[-1])


def _reason(error):
  lines = str(error).strip().splitlines()
  return f'{type(error).__name__}: {lines[0] if lines else ""}'.strip()


def restore_newest(checkpoint, directory, strict=False):
  """Restores ``checkpoint`` (a ``tf.train.Checkpoint``) from the newest readable file.

  Args:
    checkpoint: what to restore into; its variables must exist (built eagerly).
    directory: the folder of ``ckpt-N.index`` / ``ckpt-N.data-*`` files.
    strict: also require every existing object to be matched (export).

  Returns:
    The restored prefix, or None when ``directory`` holds no checkpoint.

  Raises:
    CheckpointError: checkpoints exist and none restores; names each and why.
  """
  failures = []
  for prefix in candidates(directory):
    try:
      status = checkpoint.restore(prefix).expect_partial()
      if strict:
        status.assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001 - any failure to read means: try an older one
      failures.append((prefix, _reason(e)))
      continue
    for bad, why in failures:
      logging.warning('Checkpoint %s does not restore (%s); using %s instead.',
                      pathlib.Path(bad).name, why,
                      pathlib.Path(prefix).name)
    return prefix
  if failures:
    raise CheckpointError(f'no checkpoint in {directory} restores: ' +
                          '; '.join(f'{pathlib.Path(p).name}: {why}' for p, why in failures))
  return None
