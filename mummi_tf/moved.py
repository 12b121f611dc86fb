"""Module paths from before the package split into ``model/``, ``run/`` and ``cli/`` (issue 35),
kept importable: every logdir's ``config.gin`` written before it begins with
``import mummi_tf.agent`` and its kin, and users' own gin files and scripts may too. The old
name is the new module itself (one object, one set of gin configurables), imported only when
asked for, so importing ``mummi_tf`` still imports no TensorFlow."""
import importlib
import importlib.abc
import importlib.util
import sys

_WINGS = {
    'model': ('networks fusion mssm methods objectives world_model behavior agent optim '
              'precision distribute diagnostics'),
    'run': ('driver replay logger timing checkpoints preemption evaluation trainer sweep console '
            'export export_tflite'),
    'cli': 'train',
}
MOVED = {
    f'mummi_tf.{name}': f'mummi_tf.{wing}.{name}' for wing, names in _WINGS.items()
    for name in names.split()
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Finds ``mummi_tf.agent`` and answers with ``mummi_tf.model.agent``."""
  def find_spec(self, name, path=None, target=None):
    if name in MOVED:
      origin = importlib.util.find_spec(MOVED[name]).origin  # its file, for `python -m`
      return importlib.util.spec_from_loader(name, self, origin=origin)
    return None

  def create_module(self, spec):
    module = importlib.import_module(MOVED[spec.name])
    spec.loader_state = module.__spec__  # the import system stamps the alias's spec on it next
    return module

  def exec_module(self, module):
    own = module.__spec__.loader_state  # executed already, under its own name
    module.__spec__, module.__loader__ = own, own.loader

  def get_code(self, name):  # `python -m mummi_tf.train` runs mummi_tf.cli.train
    return importlib.util.find_spec(MOVED[name]).loader.get_code(MOVED[name])


def install():
  if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
    sys.meta_path.append(_Alias())
