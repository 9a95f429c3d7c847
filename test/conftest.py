"""Test-session setup: every ROS process of this run shares one private DDS domain on loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# One domain per pytest process, away from 0 (the default other ROS users sit on). Parallel pytest runs on the
# same machine get different pids, hence (very likely) different domains; discovery is kept on this host.
os.environ["ROS_DOMAIN_ID"] = str(100 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
if "ROS_LOG_DIR" not in os.environ:  # keep ROS logs out of ~/.ros, and remove them with the session
    os.environ["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="alpamayo_roslog_")
    atexit.register(shutil.rmtree, os.environ["ROS_LOG_DIR"], ignore_errors=True)
os.environ.pop("RMW_IMPLEMENTATION", None)

from alpamayo_ros.rosenv import apply_ros_defaults

from support import shared_fixture

apply_ros_defaults()


@pytest.fixture(scope="session")
def ros_env() -> dict[str, str]:
    """Environment for child processes: same domain, same Fast DDS profile, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def official_tiny_a() -> Path:
    """The official tiny checkpoint A with its goldens (56 MB, not in the repository)."""
    return shared_fixture("official_tiny_a/model.safetensors").parent
