#!/usr/bin/env bash
# Install robosuite 1.5.2 and its real runtime needs into the project venv without
# touching TensorFlow, dm_control, mujoco or numpy.  Idempotent: re-running is a no-op.
#
# Why not `pip install robosuite`: its metadata pulls mink==0.0.5 (-> numpy<2, mujoco 4.x)
# and qpsolvers/pynput/opencv/pytest, none of which the Wipe task imports.  What the
# Wipe task really imports: mujoco (already pinned by the project), numpy, scipy, numba,
# Pillow, termcolor, and cv2 (imported at package import for its viewer; the headless
# OpenCV wheel provides it without GUI libraries).  The MuJoCo >= 3.17 incompatibilities of robosuite 1.5.2 are patched
# at load time by mummi_tf/envs/robosuite_compat.py.
#
# Usage: tools/install_robosuite.sh [PYTHON]   (default: .venv/bin/python of the repo)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "install_robosuite.sh: no python at $PY (pass the venv's python as the first argument)" >&2
  exit 2
fi

# Pin what is installed now so pip can neither up- nor downgrade it.
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
"$PY" - "$CONSTRAINTS" <<'PYEOF'
import sys
from importlib import metadata
pins = []
for name in ("numpy", "mujoco", "dm-control", "tensorflow", "scipy", "pillow"):
    try:
        pins.append(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
PYEOF

"$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" \
  "numba>=0.49.1" "termcolor" "Pillow" "scipy>=1.2.3" "opencv-python-headless"
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('robosuite') != '1.5.2')" 2>/dev/null; then
  "$PY" -m pip install --disable-pip-version-check -q --no-deps "robosuite==1.5.2"
fi

# Smoke check: robosuite and the Wipe env import beside the project's numpy/mujoco.
MUJOCO_GL="${MUJOCO_GL:-egl}" "$PY" - <<'PYEOF'
import importlib.metadata as m
import numpy, mujoco
from robosuite.environments.manipulation.wipe import Wipe  # noqa: F401
print(f"robosuite {m.version('robosuite')} ok (mujoco {mujoco.__version__}, numpy {numpy.__version__})")
PYEOF
