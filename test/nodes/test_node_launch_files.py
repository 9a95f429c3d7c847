"""launch/alpamayo.launch.py and rviz/alpamayo.rviz: checked statically here; launch itself only where it exists
(launch / launch_ros are not installable from PyPI on this machine kind)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.core.params import PARAM_SPECS
from alpamayo_ros.core.rig import CAMERA_NAMES

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "alpamayo.launch.py"
RVIZ = REPO / "rviz" / "alpamayo.rviz"


def test_launch_file_parses_and_declares_the_main_knobs() -> None:
    source = LAUNCH.read_text()
    ast.parse(source)
    for name in ("params_file", "use_sim_time", "rviz", "odometry_topic", "camera_topic_prefix"):
        assert f'"{name}"' in source
    assert "for spec in PARAM_SPECS" in source, "every node parameter must be a launch argument"


def test_launch_description_has_an_argument_per_parameter() -> None:
    pytest.importorskip("launch_ros")
    import importlib.util

    spec = importlib.util.spec_from_file_location("alpamayo_launch", LAUNCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.get_launch_arguments()}
    assert {s.name for s in PARAM_SPECS} <= names
    assert {"params_file", "use_sim_time", "rviz"} <= names


def test_rviz_config_shows_plan_markers_overlay_and_seven_cameras() -> None:
    config = yaml.safe_load(RVIZ.read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "base_link"
    topics = {d["Topic"]["Value"]: d["Class"] for d in manager["Displays"] if "Topic" in d}
    assert topics["/alpamayo_node/output/path"] == "rviz_default_plugins/Path"
    assert topics["/alpamayo_node/output/path_odom"] == "rviz_default_plugins/Path"
    assert topics["/alpamayo_node/output/markers"] == "rviz_default_plugins/MarkerArray"
    assert topics["/alpamayo_node/output/overlay"] == "rviz_default_plugins/Image"
    for cam in CAMERA_NAMES:
        assert topics[f"/alpamayo_node/input/{cam}/image"] == "rviz_default_plugins/Image"


BUILD_LAUNCH = REPO / "launch" / "build_engines.launch.py"


def test_build_only_launch_passes_every_argument_to_the_cli() -> None:
    """Static: each launch argument maps onto a real `alpamayo-ros build-engines` option, and it shuts down after."""
    import argparse

    from alpamayo_ros.runtime.build_engines import add_arguments

    source = BUILD_LAUNCH.read_text()
    ast.parse(source)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = {opt for action in parser._actions for opt in action.option_strings}
    flags = set(re.findall(r'"(--[a-z-]+)"', source))
    assert flags and flags <= options, flags - options
    assert '"build-engines"' in source and "Shutdown()" in source and "OnProcessExit" in source


def test_build_only_launch_description() -> None:
    pytest.importorskip("launch_ros")
    import importlib.util

    spec = importlib.util.spec_from_file_location("alpamayo_build_launch", BUILD_LAUNCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = {a.name for a in module.generate_launch_description().get_launch_arguments()}
    assert {"model", "out", "precision_vision", "precision_expert"} <= names
