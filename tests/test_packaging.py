"""A regular (non-editable) install carries the gin configs, finds them, and installs the
commands as console scripts."""
import os
import pathlib
import site
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_wheel_install_finds_its_gin_configs(tmp_path):
  wheels = tmp_path / 'wheels'
  subprocess.run([
      sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w',
      str(wheels),
      str(ROOT)
  ], check=True, timeout=600)
  venv = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
  python = venv / 'bin' / 'python'
  target = subprocess.run(
      [str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()'
       '["purelib"])'], capture_output=True, text=True, check=True)
  # Dependencies from this environment (a plain path: its editable finder stays off).
  pathlib.Path(target.stdout.strip(),
               'deps.pth').write_text('\n'.join(p for p in site.getsitepackages()) + '\n')
  subprocess.run([
      sys.executable, '-m', 'pip', '--python',
      str(python), 'install', '-q', '--no-deps',
      str(next(wheels.glob('*.whl')))
  ], check=True, timeout=600)
  check = ('import mummi_tf, pathlib; from mummi_tf import gin_files; '
           'assert "site-packages" in mummi_tf.__file__, mummi_tf.__file__; '
           'print(gin_files.GIN_DIR); print(gin_files.resolve("mummi"))')
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run([str(python), '-c', check], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  gin_dir, mummi = result.stdout.split()
  assert gin_dir.startswith(target.stdout.strip()) and gin_dir.endswith('mummi_tf/configs')
  assert pathlib.Path(mummi).read_text() == (ROOT / 'gin' / 'mummi.gin').read_text()
  # The commands are console scripts of the install (setup.cfg's entry points).
  for script, usage in (('mummi-train', 'mummi_tf.cli.train'), ('mummi-table1', 'table1')):
    shown = subprocess.run([str(venv / 'bin' / script), '--help'], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and 'usage:' in shown.stdout and usage in shown.stdout, shown
