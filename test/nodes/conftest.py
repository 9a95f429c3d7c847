"""The launch tests' environment: upstream launch / launch_ros / ros2launch from ../shared/vendor/ros2-launch.

launch and launch_ros have no wheels on the registries we reach, so the tests run their upstream sources (the
vendor folder's README has the recipe). Built once per test session: composition_interfaces (launch_ros imports
it; no wheel either) with CMake + rosidl, like this package's own messages, and an install prefix of this checkout
laid out as CMakeLists.txt installs it (share/alpamayo_ros/{launch,config,rviz}, lib/alpamayo_ros/<executables>,
the ament index entry), so `ros2 launch alpamayo_ros FILE` finds the checkout's launch files and executables.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REPO

VENDOR = REPO.parent / "shared" / "vendor" / "ros2-launch"
LAUNCH_SOURCES = ("launch", "launch_xml", "launch_yaml", "launch_ros", "ros2launch")
RUNNER = Path(__file__).with_name("ros2_launch_runner.py")
PACKAGE = "alpamayo_ros"


@dataclass(frozen=True)
class Ros2Launch:
    """How to run `ros2 launch alpamayo_ros FILE k:=v ...` here: the command and its environment."""

    env: dict[str, str]
    prefix: Path  # the checkout's install prefix (share/, lib/)

    def command(self, file_name: str, *arguments: str) -> list[str]:
        return [sys.executable, str(RUNNER), PACKAGE, file_name, *arguments]


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=600)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd[:3])} failed; last lines of {log}:\n" + "\n".join(log.read_text().splitlines()[-30:])
        )


def _build_composition_interfaces(root: Path) -> Path:
    """composition_interfaces (srv only) built with CMake + rosidl against the venv into root/prefix (~20 s)."""
    venv = Path(sys.prefix)
    prefix, build, log = root / "prefix", root / "build", root / "build.log"
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(venv))
    generator = "Ninja" if shutil.which("ninja") else "Unix Makefiles"
    _run(
        [
            "cmake", "-S", str(VENDOR / "composition_interfaces"), "-B", str(build), "-G", generator, "-Wno-dev",
            f"-DCMAKE_PREFIX_PATH={venv}", f"-DCMAKE_INSTALL_PREFIX={prefix}", f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=OFF",
        ],
        env,
        log,
    )  # fmt: skip
    _run(["cmake", "--build", str(build)], env, log)
    _run(["cmake", "--install", str(build)], env, log)
    return prefix


def _install_checkout(prefix: Path) -> Path:
    """The install rules of CMakeLists.txt for share/ and lib/, from the checkout (the Python package and messages
    come from the venv that scripts/setup.sh made)."""
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / PACKAGE).write_text("")
    share = prefix / "share" / PACKAGE
    share.mkdir(parents=True)
    for name in ("launch", "config", "rviz"):  # copies: ros2launch looks for launch files with os.walk (no links)
        shutil.copytree(REPO / name, share / name)
    shutil.copy2(REPO / "package.xml", share / "package.xml")
    lib = prefix / "lib" / PACKAGE
    lib.mkdir(parents=True)
    for script in (REPO / "scripts" / "ros2").iterdir():
        (lib / script.name).symlink_to(script)
    return prefix


@pytest.fixture(scope="session")
def ros2_launch(tmp_path_factory: pytest.TempPathFactory, ros_env: dict[str, str]) -> Ros2Launch:
    if not all((VENDOR / name).is_dir() for name in (*LAUNCH_SOURCES, "composition_interfaces")):
        pytest.skip(f"upstream launch sources not found at {VENDOR}: the launch files are not run")
    if importlib.util.find_spec("osrf_pycommon") is None:
        pytest.skip("osrf-pycommon is not installed (requirements/build.txt; launch imports it)")
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (composition_interfaces is built with it)")
    root = tmp_path_factory.mktemp("ros2_launch")
    interfaces = _build_composition_interfaces(root / "composition_interfaces")
    prefix = _install_checkout(root / "alpamayo_ros")
    site = interfaces / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env = dict(ros_env)
    env["PYTHONPATH"] = os.pathsep.join(
        [*(str(VENDOR / name) for name in LAUNCH_SOURCES), str(site), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(interfaces / "lib"), env.get("LD_LIBRARY_PATH", "")])
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(prefix), str(interfaces), sys.prefix])
    # lib/alpamayo_ros/* start with `#!/usr/bin/env python3`: this interpreter, as on a sourced ROS install.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return Ros2Launch(env, prefix)
