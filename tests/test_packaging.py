"""A regular (non-editable) install carries the gin configs and finds them."""
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
  check = ('import mummi_tf, pathlib; from mummi_tf import train; '
           'assert "site-packages" in mummi_tf.__file__, mummi_tf.__file__; '
           'print(mummi_tf.GIN_DIR); print(train.resolve_gin_file("mummi"))')
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run([str(python), '-c', check], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  gin_dir, mummi = result.stdout.split()
  assert gin_dir == str(venv / 'share' / 'mummi_tf' / 'gin')
  assert pathlib.Path(mummi).read_text() == (ROOT / 'gin' / 'mummi.gin').read_text()
