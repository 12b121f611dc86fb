"""The commands of the README and of docs/*.md are copy-pasteable: every `make` line resolves to a train/eval/export
command whose flags and gin files exist, and every tool line (run with the venv's python, as written) names flags the tool has."""
import configparser
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from mummi_tf import gin_files
from mummi_tf.cli import train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
  text = '\n'.join(
      p.read_text() for p in [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))])
  lines = []
  for block in re.findall(r'```(?:sh|bash)\n(.*?)```', text, re.S):
    for line in block.splitlines():
      line = line.split('  #')[0].strip()
      if line:
        lines.append(line)
  return lines


MAKE = [l for l in readme_commands() if l.startswith('make ')]
TOOLS = [
    l for l in readme_commands()
    if l.startswith('.venv/bin/python tools/') or l.startswith('.venv/bin/mummi-')
]


def test_the_readme_is_a_front_page():
  """What it is, the two commands, a first run, results, links: history and long explanations
  live in docs/ (issue 36)."""
  text = (ROOT / 'README.md').read_text()
  assert len(text.splitlines()) <= 200 and len(text) <= 20000, len(text)  # with the results blocks
  assert max(len(line) for line in text.splitlines()) <= 400  # no 700-character table cells
  for link in re.findall(r'\]\(((?:docs|bench)/[^)#]+)\)', text):
    assert (ROOT / link).exists(), link


def test_the_readme_has_commands_to_check():
  assert len(MAKE) >= 8 and len(TOOLS) >= 4


@pytest.mark.parametrize('line', MAKE)
def test_make_lines_resolve_to_valid_commands(line):
  result = subprocess.run(['make', '-n', '--no-print-directory'] + shlex.split(line)[1:], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  for command in result.stdout.splitlines():
    if '-m mummi_tf.cli.train' in command:
      args = train.parse_args(shlex.split(command.split('-m mummi_tf.cli.train', 1)[1]))
      args.gin_file = [str(gin_files.resolve(name)) for name in args.gin_file]
      if args.task:
        assert train.envs_lib.canonical_task(args.task) in train.envs_lib.TASKS, args.task
      for binding in args.gin_binding:
        assert re.fullmatch(r'[\w.]+ ?= ?.+', binding), binding


def console_scripts():
  """{script name: module} of setup.cfg's entry points (what ``.venv/bin/mummi-*`` runs)."""
  config = configparser.ConfigParser()
  config.read(ROOT / 'setup.cfg')
  lines = config['options.entry_points']['console_scripts'].strip().splitlines()
  return {l.split('=')[0].strip(): l.split('=')[1].split(':')[0].strip() for l in lines}


@pytest.mark.parametrize('line', TOOLS)
def test_tool_lines_name_flags_the_tool_has(line):
  words = shlex.split(line)
  if words[0].startswith('.venv/bin/mummi-'):  # the module the console script runs
    command = ['-m', console_scripts()[words[0].split('/')[-1]]]
  else:
    command = [str(ROOT / words[1])]
  result = subprocess.run([sys.executable, *command, '--help'], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  for flag in re.findall(r'(?<![\w-])--[a-z_]+', line):
    assert flag in result.stdout, f'{words[0]} has no {flag}'


def test_make_help_lists_every_documented_target():
  """`make help` (the README's pointer to the targets) shows each target that has a `##` line,
  `table1` included."""
  targets = re.findall(r'^([\w-]+):.*## ', (ROOT / 'Makefile').read_text(), re.M)
  shown = subprocess.run(['make', '--no-print-directory', 'help'], cwd=ROOT, capture_output=True,
                         text=True, timeout=60).stdout
  assert 'table1' in targets and len(targets) >= 10
  for target in targets:
    assert f'make {target}\t' in shown, target
