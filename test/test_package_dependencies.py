"""package.xml declares the ROS packages the code imports, and only those; ROS users are pointed at the
requirements set made for a ROS install (not the PyPI-ROS-wheels one)."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from support import REPO

# Dependencies that are not Python imports of ours: build / runtime plumbing and the tools the launch file starts.
NOT_IMPORTED = {"rosidl_default_runtime", "rviz2", "lifecycle_msgs"}


def _ros_imports() -> set[str]:
    """Top-level ROS packages imported anywhere in the package or its launch files."""
    names: set[str] = set()
    for path in [*(REPO / "src" / "alpamayo_ros").rglob("*.py"), *(REPO / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    ros = {"rclpy", "rcl_interfaces", "launch", "launch_ros", "cv_bridge", "tf2_ros"}
    return {n for n in names if n in ros or n.endswith(("_msgs", "_interfaces"))} - {"alpamayo_ros"}


def _depends(kinds: tuple[str, ...]) -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {str(e.text) for kind in kinds for e in root.iter(kind)}


def test_every_imported_ros_package_is_declared_and_every_declared_one_is_used() -> None:
    runtime = _depends(("depend", "exec_depend"))
    imported = _ros_imports()
    assert imported - runtime == set(), "imported but not in package.xml"
    declared_ros = {d for d in runtime if not d.startswith("python3-")} - NOT_IMPORTED
    assert declared_ros - imported - {"std_msgs"} == set(), "declared in package.xml but never imported"
    assert "cv_bridge" not in runtime  # images are converted with numpy (core/images.py)


def test_rosdep_keys_for_the_python_stack_and_the_ros_user_requirements() -> None:
    runtime = _depends(("exec_depend",))
    assert {"python3-numpy", "python3-opencv", "python3-yaml", "python3-torch"} <= runtime
    assert "ament_cmake_pytest" in _depends(("test_depend",))
    text = (REPO / "package.xml").read_text()
    assert "requirements/ros-user.txt" in text and "runtime.txt" not in text
    ros_user = (REPO / "requirements" / "ros-user.txt").read_text()
    lines = [line.split("#")[0].strip() for line in ros_user.splitlines()]
    assert "numpy<2" in lines and "-r ml.txt" in lines
    for path in [REPO / "requirements" / "ml.txt", REPO / "requirements" / "ros-user.txt"]:
        pinned = {re.split(r"[=<>]", line)[0].lower() for line in path.read_text().splitlines() if line[:1].isalpha()}
        assert not pinned & {"ros-rclpy", "opencv-python-headless", "pyyaml"}, path  # the system's, on a ROS install
    assert not any(line.startswith("numpy==2") for line in Path(REPO / "requirements" / "ml.txt").read_text().split())
