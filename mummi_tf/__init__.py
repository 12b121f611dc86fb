"""MuMMI in TensorFlow 2 (arXiv 2107.02339). Importing the package never imports TensorFlow:
environment worker processes import it too (see docs/ARCHITECTURE.md)."""
import pathlib

import gin

GIN_DIR = pathlib.Path(__file__).resolve().parent.parent / 'gin'
gin.add_config_file_search_path(str(GIN_DIR))  # `include 'agent.gin'` in method files.
