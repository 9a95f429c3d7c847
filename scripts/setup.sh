#!/usr/bin/env bash
# One-command setup on a fresh Debian 12 / Python 3.11 machine with no ROS installed:
#   .venv with pinned ROS 2 kilted wheels + the CPU PyTorch build, the package installed editable, and the
#   alpamayo_ros messages built by rosidl (CMake) and installed into the venv.
# Idempotent: a stamp records a hash of every input; a second run with nothing changed returns at once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="${ALPAMAYO_VENV:-$here/.venv}"
py="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
site=$("$vpy" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")

stamp="$venv/.alpamayo_setup_stamp"
inputs_hash=$(cat requirements/*.txt package.xml CMakeLists.txt msg/*.msg setup.py pyproject.toml \
  scripts/setup.sh src/alpamayo_ros/__init__.py | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] \
   && "$vpy" -c "import alpamayo_ros.msg, alpamayo_ros.cli" 2>/dev/null; then
  log "up to date ($venv)"
  exit 0
fi

log "installing pinned packages (torch CPU build, ROS 2 kilted wheels, tools, Ray for the fleet executor)"
# (machines with a pip config pointing at absent local indexes print one warning per package: not ours to show)
"$vpy" -m pip install -q --disable-pip-version-check -r requirements/runtime.txt -r requirements/build.txt \
  -r requirements/fleet.txt \
  2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)

log "installing alpamayo_ros (editable)"
rm -rf "$site"/alpamayo_ros-*.egg-info   # left by an earlier message build: not a pip distribution
"$vpy" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
  -e .

# The ROS wheels' exported CMake files carry the include paths of the machine that built them; point them at
# this interpreter's headers and numpy's, or configuring the message build fails on a non-existent path.
pyinc=$("$vpy" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
npinc=$("$vpy" -c "import numpy; print(numpy.get_include())")
{ grep -rlE "/opt/python/cp3[0-9]+-cp3[0-9]+" "$venv/share" --include='*.cmake' 2>/dev/null || true; } |
  while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g; \
               s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g" "$f"
  done

log "building messages (rosidl via CMake) into $venv"
gen="Ninja"; command -v ninja >/dev/null || gen="Unix Makefiles"
mkdir -p "$here/build"
build="$here/build/msgs"
export AMENT_PREFIX_PATH="$venv"
cmake -S "$here" -B "$build" -G "$gen" -Wno-dev \
  -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$vpy" \
  -DALPAMAYO_ROS_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF >"$build.log" 2>&1 || { cat "$build.log"; exit 1; }
cmake --build "$build" >>"$build.log" 2>&1 || { tail -50 "$build.log"; exit 1; }
cmake --install "$build" >>"$build.log" 2>&1 || { tail -50 "$build.log"; exit 1; }

# rosidl also writes an egg-info (a later pip run would take it for our distribution and uninstall the
# generated files with it) and an empty alpamayo_ros/__init__.py that would shadow the sources. Drop the first;
# replace the second with our own __init__, whose extend_path joins both halves under one import name.
rm -rf "$site"/alpamayo_ros-*.egg-info
cp src/alpamayo_ros/__init__.py "$site/alpamayo_ros/__init__.py"

"$vpy" -c "import alpamayo_ros.msg, alpamayo_ros.cli; print('[setup] ok: alpamayo_ros.msg and sources import')"
echo "$inputs_hash" > "$stamp"
