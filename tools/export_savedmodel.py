#!/usr/bin/env python
"""``python tools/export_savedmodel.py``: the export command (``mummi_tf/cli/export.py``, also
``make export`` and ``mummi-export``) by the path the Dreamer lineage's users know."""
import sys

from mummi_tf.cli import export

if __name__ == '__main__':
  sys.exit(export.main())
