"""The gin files (the paper's appendix as configuration) in ``mummi_tf/configs/`` (``gin/`` at the
top of a checkout links there), and how a command names them: ``mummi`` is ``mummi.gin``."""
import pathlib

from mummi_tf import envs as envs_lib
from mummi_tf.errors import UsageError

GIN_DIR = pathlib.Path(__file__).resolve().parent / 'configs'
FAMILY_GIN = {'dmc': 'envs_dmc', 'robosuite_wipe': 'table_wiping', 'toy2d': 'toy2d'}


def available():
  """The names ``--gin_file`` takes: ``mummi``, ``small``, …"""
  return sorted(p.stem for p in GIN_DIR.glob('*.gin'))


def resolve(name):
  """``mummi`` → ``gin/mummi.gin``; an existing path is taken as it is."""
  path = pathlib.Path(name)
  if path.suffix == '.gin' and path.is_file():
    return path
  candidate = GIN_DIR / f'{name}.gin'
  if candidate.exists():
    return candidate
  raise UsageError(f'unknown gin file {name!r}; valid: {", ".join(available())} '
                   '(or a path to a .gin file)')


def family_file(task):
  """The task family's gin file, applied before the user's (docs/ARCHITECTURE.md)."""
  path = GIN_DIR / f'{FAMILY_GIN[envs_lib.suite_of(task)]}.gin'
  return path if path.exists() else None
