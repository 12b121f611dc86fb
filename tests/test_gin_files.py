"""The ablation gin files: each parses after `mummi small` and changes what it says it changes."""
import re

import gin
import pytest

from mummi_tf import gin_files

BINDING = re.compile(r'^([\w.]+) *= *(.+?) *(#.*)?$', re.M)
ABLATIONS = [name for name in gin_files.available() if name.startswith('ablate_')]


def test_the_ablations_are_there():
  assert {'ablate_touch_weight', 'ablate_poe_eq11', 'ablate_update_order'} <= set(ABLATIONS)


@pytest.mark.parametrize('name', ABLATIONS)
def test_an_ablation_rebinds_mummi_small(name):
  gin.clear_config()
  base = [str(gin_files.resolve(n)) for n in ('mummi', 'small')]
  gin.parse_config_files_and_bindings(base, [], finalize_config=False)
  keys = [m.group(1) for m in BINDING.finditer(gin_files.resolve(name).read_text())]
  assert keys, f'{name}.gin binds nothing'

  def query(key):
    try:
      return gin.query_parameter(key)
    except ValueError:  # not bound by mummi small
      return None

  before = {key: query(key) for key in keys}
  gin.parse_config_file(str(gin_files.resolve(name)))
  after = {key: query(key) for key in keys}
  gin.clear_config()
  assert all(after[key] != before[key] for key in keys), (before, after)
