#!/usr/bin/env bash
# Headless OpenGL for MuJoCo rendering (EGL, with OSMesa as the fallback): Debian packages
# libegl1 + libegl-mesa0 + libosmesa6. Installs only what is missing; needs root (or sudo).
set -euo pipefail
need=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install_system_deps: missing ${need[*]} and no apt-get; install headless EGL/OSMesa for MuJoCo by hand" >&2
  exit 1
fi
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install_system_deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
