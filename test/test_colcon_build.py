"""A ROS 2 user's flow: `colcon build` of this checkout in a workspace, the installed package imports and its
commands run, and `colcon test` runs the pytest suite (registered through ament_cmake_pytest)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import REPO

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def _copy_checkout(dest: Path) -> None:
    """Copy what git tracks (plus untracked, non-ignored files), as a user's clone would have it."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def test_colcon_build_installs_messages_and_sources_in_one_package_and_colcon_test_runs_pytest(tmp_path: Path) -> None:
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed in this environment")
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    pkg = tmp_path / "ws" / "src" / "alpamayo_ros"
    pkg.mkdir(parents=True)
    _copy_checkout(pkg)
    prefix = sys.prefix  # where the ROS 2 wheels put share/ and the ament index (= /opt/ros/<distro> on a ROS install)
    env = dict(os.environ, AMENT_PREFIX_PATH=prefix, CMAKE_PREFIX_PATH=prefix)
    build = _run(
        [
            colcon,
            "build",
            "--event-handlers",
            "console_direct-",
            "--cmake-args",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=ON",
            # one quick test is enough to show the suite is registered (the default skips only slow tests)
            "-DALPAMAYO_ROS_PYTEST_ARGS=-k test_versions_agree",
        ],
        cwd=tmp_path / "ws",
        env=env,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]

    install = tmp_path / "ws" / "install" / "alpamayo_ros"
    site = install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert (site / "alpamayo_ros" / "msg" / "_chain_of_causation.py").is_file()
    assert (site / "alpamayo_ros" / "cli.py").is_file()
    assert os.access(install / "lib" / "alpamayo_ros" / "alpamayo_node", os.X_OK)
    assert os.access(install / "bin" / "alpamayo-ros", os.X_OK)
    assert (install / "share" / "alpamayo_ros" / "msg" / "ChainOfCausation.msg").is_file()
    for folder in ("launch", "config", "rviz"):
        assert (install / "share" / "alpamayo_ros" / folder).is_dir()

    probe = (
        "import alpamayo_ros, alpamayo_ros.msg as m, alpamayo_ros.cli as c;"
        "from rclpy.serialization import serialize_message;"
        "assert len(serialize_message(m.ChainOfCausation())) > 0;"
        "print(m.__file__); print(c.__file__)"
    )
    run_env = dict(env, PYTHONPATH=str(site), AMENT_PREFIX_PATH=f"{install}:{prefix}")
    out = _run([sys.executable, "-c", probe], env=run_env, timeout=120)
    assert out.returncode == 0, out.stderr
    msg_file, cli_file = out.stdout.split()
    assert msg_file.startswith(str(site)) and cli_file.startswith(str(site)), out.stdout

    # What the README tells ROS users to run, with install/ sourced (PATH gets install/<pkg>/bin).
    path = os.pathsep.join([str(install / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for cmd in (["alpamayo-ros", "--help"], [str(install / "lib" / "alpamayo_ros" / "alpamayo_cli"), "--help"]):
        done = _run(cmd, env=dict(run_env, PATH=path), timeout=60)
        assert done.returncode == 0 and "synth" in done.stdout, (cmd, done.stdout, done.stderr)
    assert shutil.which("alpamayo-ros", path=path) == str(install / "bin" / "alpamayo-ros")

    tested = _run(
        [colcon, "test", "--event-handlers", "console_direct-"], cwd=tmp_path / "ws", env=run_env, timeout=600
    )
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-4000:]
    results = _run([colcon, "test-result", "--all", "--test-result-base", str(tmp_path / "ws" / "build")], timeout=60)
    summary = results.stdout.strip().splitlines()[-1] if results.stdout.strip() else results.stderr
    assert "pytest.xunit.xml" in results.stdout, results.stdout + results.stderr
    assert re.search(r"Summary: [1-9]\d* tests?, 0 errors, 0 failures", summary), results.stdout + results.stderr
