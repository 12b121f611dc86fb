"""MuMMI in TensorFlow 2 (arXiv 2107.02339), in three wings: ``model/`` (the paper: networks to
agent), ``run/`` (collection, replay, logging, checkpoints, the training loop, evaluation,
sweeps, export) and ``cli/`` (the commands); ``envs/`` the environments, ``configs/`` the gin
files. Importing the package never imports TensorFlow: environment worker processes import it
too (see docs/ARCHITECTURE.md)."""
import pathlib

import gin

from mummi_tf import moved

# `include 'agent.gin'` in the method files, wherever a gin file is parsed from.
gin.add_config_file_search_path(str(pathlib.Path(__file__).resolve().parent / 'configs'))
moved.install()  # old module paths (a run's config.gin begins with `import mummi_tf.agent`)
