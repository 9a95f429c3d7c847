"""Our message definitions for tools that do not go through rclpy (rosbags reading/writing bags).

rosbags needs the .msg text of custom types. The text is looked up where each install flow puts it:
the ament share directory (colcon, or the venv prefix that scripts/setup.sh installs into), then the source
tree's msg/ (editable checkout). No rclpy import here.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

PACKAGE = "alpamayo_ros"
MESSAGE_NAMES: tuple[str, ...] = ("CausalStep", "DrivingDecision", "StageLatency", "ChainOfCausation")


class InterfaceNotFoundError(FileNotFoundError):
    """The .msg files of this package could not be found in any install location."""


def _candidate_dirs() -> list[Path]:
    dirs = [
        Path(prefix) / "share" / PACKAGE / "msg"
        for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(":")
        if prefix
    ]
    dirs.append(Path(sys.prefix) / "share" / PACKAGE / "msg")
    dirs.append(Path(__file__).resolve().parents[2] / "msg")  # source checkout: <repo>/src/alpamayo_ros -> <repo>/msg
    return dirs


def msg_dir() -> Path:
    """First directory that holds every .msg file of the package."""
    tried = _candidate_dirs()
    for directory in tried:
        if all((directory / f"{name}.msg").is_file() for name in MESSAGE_NAMES):
            return directory
    raise InterfaceNotFoundError(
        f"{PACKAGE} .msg files not found; looked in: {', '.join(str(d) for d in tried)}. "
        "Run scripts/setup.sh (venv) or source the colcon workspace."
    )


def msg_definitions() -> dict[str, str]:
    """Full type name ('alpamayo_ros/msg/ChainOfCausation') -> .msg text."""
    directory = msg_dir()
    return {f"{PACKAGE}/msg/{name}": (directory / f"{name}.msg").read_text() for name in MESSAGE_NAMES}


@cache
def typestore() -> Typestore:
    """A rosbags typestore of ROS 2 kilted's standard messages plus ours (cached: building it costs ~50 ms)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name, text in msg_definitions().items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store
