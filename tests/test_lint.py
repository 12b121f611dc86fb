"""The tree stays clean under `make lint` (yapf formatting, ruff checks; pyproject.toml)."""
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
PATHS = ['mummi_tf', 'tools', 'tests', 'bench', 'docs/results/scripts']


def _run(*args):
  if not (BIN / args[0]).exists():
    pytest.skip(f'{args[0]} is not installed (pip install -e ".[dev]")')
  return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


def test_the_tree_is_formatted_as_yapf_formats_it():
  result = _run('yapf', '--diff', '--recursive', *PATHS)
  assert result.returncode == 0 and not result.stdout, result.stdout[:3000] + result.stderr


def test_ruff_finds_nothing():
  result = _run('ruff', 'check', *PATHS)
  assert result.returncode == 0, result.stdout[:3000] + result.stderr


def test_yapf_would_flag_a_four_space_indent(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text('def f():\n    return 1\n')
  result = _run('yapf', '--diff', '--style', str(ROOT / 'pyproject.toml'), str(bad))
  assert '+  return 1' in result.stdout
