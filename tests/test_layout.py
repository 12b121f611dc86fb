"""The package's three wings, as the tree shows them (docs/ARCHITECTURE.md): ``model/`` (the
paper) never imports the run machinery or the commands, ``run/`` never imports the commands,
``envs/`` none of the three, and no module imports another that imports it back (counting
imports inside functions too). Read from the source, so it holds before anything runs."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'mummi_tf'
# A wing may import the wings listed (and itself, errors, configs where shown).
ALLOWED = {
    'model': {'model', 'errors'},
    'run': {'run', 'model', 'envs', 'gin_files', 'errors'},
    'cli': {'cli', 'run', 'model', 'envs', 'gin_files', 'toy', 'errors'},
    'envs': {'envs', 'errors'},
    'gin_files': {'envs', 'errors'},
    'toy': {'toy', 'model', 'envs', 'errors'},
}


def modules():
  """{dotted module name: path} of every module of the package."""
  found = {}
  for path in PACKAGE.rglob('*.py'):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
    found[name] = path
  return found


def imports(path, known):
  """The package modules ``path`` imports, anywhere in it."""
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [f'{node.module}.{a.name}' for a in node.names]
      names = [n if n in known else node.module for n in names]
    else:
      continue
    out |= {n for n in names if n.startswith('mummi_tf')}
  return out


def wing(name):
  parts = name.split('.')
  return parts[1] if len(parts) > 1 else None


def test_each_wing_imports_only_what_is_beneath_it():
  known = modules()
  wrong = []
  for name, path in known.items():
    if wing(name) not in ALLOWED:
      continue
    for target in imports(path, known):
      if target not in known:
        wrong.append(f'{name} imports {target}, which does not exist (an old path?)')
      elif wing(target) is not None and wing(target) not in ALLOWED[wing(name)]:
        wrong.append(f'{name} ({wing(name)}) imports {target} ({wing(target)})')
  assert not wrong, '\n'.join(wrong)


def test_no_import_loop():
  known = modules()
  graph = {name: imports(path, known) & set(known) for name, path in known.items()}
  graph = {name: {t for t in targets if t != name} for name, targets in graph.items()}
  loops, state = [], {}

  def visit(node, stack):
    state[node] = 'open'
    for target in sorted(graph[node]):
      # A package's __init__ importing its own submodules is how packages are built.
      if node != 'mummi_tf' and target.startswith(node + '.'):
        continue
      if state.get(target) == 'open':
        loops.append(' -> '.join(stack[stack.index(target):] + [target]))
      elif target not in state:
        visit(target, stack + [target])
    state[node] = 'done'

  for name in sorted(graph):
    if name not in state:
      visit(name, [name])
  assert not loops, '\n'.join(loops)


def test_the_check_sees_a_violation(tmp_path):
  """The checks read real imports: a model module importing the trainer is caught."""
  fake = tmp_path / 'm.py'
  fake.write_text('def f():\n  from mummi_tf.run import trainer\n')
  known = modules()
  assert 'mummi_tf.run.trainer' in imports(fake, known)
  assert wing('mummi_tf.run.trainer') not in ALLOWED['model']


def test_the_old_command_path_still_runs():
  """``python -m mummi_tf.train`` (the path before the split, in users' scripts and notes) runs
  the command (mummi_tf/moved.py)."""
  import subprocess
  import sys
  done = subprocess.run([sys.executable, '-m', 'mummi_tf.train', '--help'], capture_output=True,
                        text=True, timeout=300, cwd=PACKAGE.parent)
  assert done.returncode == 0 and 'usage: python -m mummi_tf.cli.train' in done.stdout, done.stderr
