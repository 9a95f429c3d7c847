"""Process environment for our ROS 2 processes, applied before rclpy.init (no rclpy import here).

Fast DDS reads its profile file and the RMW choice at participant creation, so these must be in os.environ
before the first node exists. Values the user already set always win.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

FASTDDS_PROFILE_NAME = "fastdds_large_images.xml"


def fastdds_profile_path() -> Path:
    """The shipped large-image Fast DDS profile, a real file beside this module.

    Resolved from this file rather than importlib.resources: the package's __path__ spans two folders in the
    venv flow (generated messages + sources), and the profile lives with the sources.
    """
    return Path(__file__).resolve().parent / "resources" / FASTDDS_PROFILE_NAME


def apply_ros_defaults(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Fill in the settings our processes need unless already set; returns the mapping it changed."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    target.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(fastdds_profile_path()))
    # librcl in the PyPI wheels links Fast DDS directly: any other RMW exits with code 102.
    if target.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp" and not _ros_install_present():
        raise RuntimeError(
            f"RMW_IMPLEMENTATION={target['RMW_IMPLEMENTATION']!r} is not available with the PyPI ROS 2 wheels; "
            "unset it or use rmw_fastrtps_cpp"
        )
    return target


def _ros_install_present() -> bool:
    """True on a real ROS 2 install (sourced setup), where other RMWs may exist."""
    return bool(os.environ.get("ROS_DISTRO")) and Path("/opt/ros").exists()
