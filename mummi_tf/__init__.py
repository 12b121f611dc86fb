"""MuMMI in TensorFlow 2 (arXiv 2107.02339). Importing the package never imports TensorFlow:
environment worker processes import it too (see docs/ARCHITECTURE.md)."""
import pathlib
import sys

import gin


def _gin_dir():
  """``gin/`` beside the package in a source tree (also an editable install), else the copy
  a regular install (``pip install .``, a wheel) put in ``<prefix>/share/mummi_tf/gin``."""
  source = pathlib.Path(__file__).resolve().parent.parent / 'gin'
  if source.is_dir():
    return source
  for prefix in (sys.prefix, sys.base_prefix):
    installed = pathlib.Path(prefix) / 'share' / 'mummi_tf' / 'gin'
    if installed.is_dir():
      return installed
  return source


GIN_DIR = _gin_dir()
gin.add_config_file_search_path(str(GIN_DIR))  # `include 'agent.gin'` in method files.
