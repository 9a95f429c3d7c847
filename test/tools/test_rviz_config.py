"""rviz/alpamayo.rviz and its generator: RViz's own property names, topics under any namespace, odom fixed frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.tools import rviz_config

from support import REPO

SHIPPED = REPO / "rviz" / "alpamayo.rviz"

# Properties rviz_default_plugins' displays declare (ros2/rviz, displays/path/path_display.cpp and friends), beyond
# those every display has. RViz ignores an unknown property without a word, so a misspelt one is a silent default.
COMMON = {"Class", "Name", "Enabled", "Value", "Topic"}
KNOWN = {
    "rviz_default_plugins/Path": {
        "Line Style",
        "Line Width",
        "Color",
        "Alpha",
        "Buffer Length",
        "Offset",
        "Pose Style",
        "Length",
        "Radius",
        "Pose Color",
        "Shaft Length",
        "Head Length",
        "Shaft Diameter",
        "Head Diameter",
    },
    "rviz_default_plugins/Grid": {
        "Reference Frame",
        "Plane Cell Count",
        "Normal Cell Count",
        "Cell Size",
        "Line Style",
        "Color",
        "Alpha",
        "Plane",
        "Offset",
    },
    "rviz_default_plugins/TF": {
        "Show Names",
        "Show Axes",
        "Show Arrows",
        "Marker Scale",
        "Marker Alpha",
        "Update Interval",
        "Frame Timeout",
        "Frames",
        "Tree",
    },
    "rviz_default_plugins/MarkerArray": {"Namespaces"},
    "rviz_default_plugins/Image": {"Normalize Range", "Min Value", "Max Value", "Median window"},
}


def displays(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config["Visualization Manager"]["Displays"])


def test_shipped_config_is_the_generators_output_for_the_root_namespace() -> None:
    assert SHIPPED.read_text() == rviz_config.render(), (
        "rviz/alpamayo.rviz is stale: python -m alpamayo_ros.tools.rviz_config --out rviz/alpamayo.rviz"
    )


def test_every_display_property_is_one_rviz_knows() -> None:
    for display in displays(yaml.safe_load(SHIPPED.read_text())):
        unknown = set(display) - COMMON - KNOWN[display["Class"]]
        assert not unknown, f"{display['Name']}: RViz has no property {sorted(unknown)}"
    path = next(d for d in displays(yaml.safe_load(SHIPPED.read_text())) if d["Name"] == "Plan (base_link)")
    assert (path["Pose Style"], path["Length"], path["Radius"]) == ("Axes", 0.6, 0.05)


@pytest.mark.parametrize("namespace", ["veh1", "/veh1", "/veh1/", "/fleet/veh_2"])
def test_topics_follow_the_node_namespace(namespace: str) -> None:
    config = yaml.safe_load(rviz_config.render(namespace))
    prefix = "/" + namespace.strip("/") + "/alpamayo_node"
    topics = {d["Topic"]["Value"]: d["Class"] for d in displays(config) if "Topic" in d}
    assert topics[f"{prefix}/output/path"] == "rviz_default_plugins/Path"
    assert topics[f"{prefix}/output/path_odom"] == "rviz_default_plugins/Path"
    assert topics[f"{prefix}/output/markers"] == "rviz_default_plugins/MarkerArray"
    assert topics[f"{prefix}/output/overlay"] == "rviz_default_plugins/Image"
    for cam in CAMERA_NAMES:
        assert topics[f"{prefix}/input/{cam}/image"] == "rviz_default_plugins/Image"
    assert all(t.startswith(prefix) for t in topics)


def test_camera_topic_prefix_matches_the_launch_argument() -> None:
    config = yaml.safe_load(rviz_config.render("veh1", camera_topic_prefix="/sensing/camera/"))
    topics = {d["Topic"]["Value"] for d in displays(config) if d["Class"] == "rviz_default_plugins/Image"}
    assert {f"/sensing/camera/{cam}/image_raw" for cam in CAMERA_NAMES} <= topics


def test_odom_fixed_frame_shows_tf_and_the_odom_plan() -> None:
    config = yaml.safe_load(rviz_config.render(fixed_frame="odom"))
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "odom"
    assert next(d for d in displays(config) if d["Class"] == "rviz_default_plugins/TF")["Enabled"] is True
    odom_plan = next(d for d in displays(config) if d.get("Topic", {}).get("Value", "").endswith("/path_odom"))
    assert odom_plan["Enabled"] is True
    shipped = displays(yaml.safe_load(SHIPPED.read_text()))
    assert not next(d for d in shipped if d["Class"] == "rviz_default_plugins/TF")["Enabled"]  # base_link: no TF


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace", "1veh"], "not a valid ROS namespace: '1veh'"),
        (["--namespace", "veh-1"], "not a valid ROS namespace: 'veh-1'"),
        (["--camera-topic-prefix", "sensing"], "camera topic prefix must be absolute"),
        (["--out", "/nonexistent-dir/x.rviz"], "cannot write /nonexistent-dir/x.rviz"),
    ],
)
def test_bad_arguments_get_one_line_and_a_non_zero_exit(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rviz_config.main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_writes_the_file_it_is_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "veh1.rviz"
    assert rviz_config.main(["--namespace", "veh1", "--fixed-frame", "odom", "--out", str(out)]) == 0
    text = out.read_text()
    assert text == rviz_config.render("veh1", "odom")
    assert "--namespace /veh1 --fixed-frame odom" in text.splitlines()[1]
