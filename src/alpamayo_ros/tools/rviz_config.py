"""The RViz 2 config of alpamayo_node, for any node namespace: ``python -m alpamayo_ros.tools.rviz_config``.

RViz display topics are absolute, so a config written for ``/alpamayo_node/...`` shows nothing once the node runs
under ``namespace:=veh1`` (``/veh1/alpamayo_node/...``). This module writes the config for a namespace;
``rviz/alpamayo.rviz`` is its output for the root namespace (a test keeps the two equal), and the launch file
generates one when it starts RViz under a namespace.

    python -m alpamayo_ros.tools.rviz_config --namespace veh1 --fixed-frame odom --out /tmp/veh1.rviz
    rviz2 -d /tmp/veh1.rviz

Fixed frame ``base_link`` needs no TF: the plan, its markers and the overlay are all in base_link at t0. Fixed
frame ``odom`` needs odom -> base_link on /tf (the synthetic bags carry it) and also shows ``~/output/path_odom``.
Display property names are rviz_default_plugins' own (e.g. the Path display's axes are ``Length`` / ``Radius``);
RViz silently ignores a property it does not know.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.core.params import NODE_NAME
from alpamayo_ros.core.rig import CAMERA_NAMES

FIXED_FRAMES: tuple[str, ...] = ("base_link", "odom")
_NAMESPACE = re.compile(r"^(/[A-Za-z_][A-Za-z0-9_]*)*$")


class RvizConfigError(ValueError):
    """A namespace or topic prefix that is not a valid ROS name; the message names it."""


def normalize_namespace(namespace: str) -> str:
    """'veh1', '/veh1' and '/veh1/' -> '/veh1'; '' and '/' -> '' (the root namespace).

    Raises:
        RvizConfigError: not a valid ROS namespace (tokens of letters, digits and '_', not starting with a digit).
    """
    stripped = namespace.strip().strip("/")
    normalized = f"/{stripped}" if stripped else ""
    if not _NAMESPACE.match(normalized):
        raise RvizConfigError(f"not a valid ROS namespace: {namespace!r}")
    return normalized


def node_topic(namespace: str, relative: str) -> str:
    """The absolute name of the node's private topic ``~/<relative>`` under ``namespace``."""
    return f"{normalize_namespace(namespace)}/{NODE_NAME}/{relative}"


def camera_topic(namespace: str, camera: str, camera_topic_prefix: str = "") -> str:
    """Where the node subscribes to ``camera``: ``<prefix>/<camera>/image_raw`` (the launch file's
    ``camera_topic_prefix``) or, by default, its private ``~/input/<camera>/image``."""
    if camera_topic_prefix:
        return f"{camera_topic_prefix.rstrip('/')}/{camera}/image_raw"
    return node_topic(namespace, f"input/{camera}/image")


def _topic(name: str, reliability: str = "Reliable") -> dict[str, Any]:
    return {
        "Value": name,
        "Depth": 5,
        "Durability Policy": "Volatile",
        "History Policy": "Keep Last",
        "Reliability Policy": reliability,
    }


def _path_display(name: str, topic: str, colour: str, enabled: bool) -> dict[str, Any]:
    return {
        "Class": "rviz_default_plugins/Path",
        "Name": name,
        "Enabled": enabled,
        "Value": enabled,
        "Topic": _topic(topic),
        "Line Style": "Billboards",
        "Line Width": 0.3,
        "Color": colour,
        "Alpha": 1,
        "Buffer Length": 1,
        "Pose Style": "Axes",
        "Length": 0.6,
        "Radius": 0.05,
        "Offset": {"X": 0, "Y": 0, "Z": 0.15},
    }


def build_config(namespace: str = "", fixed_frame: str = "base_link", camera_topic_prefix: str = "") -> dict[str, Any]:
    """The RViz config as a YAML-ready dict: plan (base_link and odom), markers, overlay, TF, seven cameras.

    Raises:
        RvizConfigError: a bad namespace, fixed frame or camera topic prefix.
    """
    if fixed_frame not in FIXED_FRAMES:
        raise RvizConfigError(f"fixed frame must be one of {', '.join(FIXED_FRAMES)}, got {fixed_frame!r}")
    if camera_topic_prefix and not camera_topic_prefix.startswith("/"):
        raise RvizConfigError(f"camera topic prefix must be absolute (start with '/'), got {camera_topic_prefix!r}")
    in_odom = fixed_frame == "odom"
    displays: list[dict[str, Any]] = [
        {
            "Class": "rviz_default_plugins/Grid",
            "Name": "Grid",
            "Enabled": True,
            "Value": True,
            "Cell Size": 1,
            "Plane Cell Count": 80,
            "Reference Frame": "<Fixed Frame>",
            "Color": "160; 160; 164",
            "Alpha": 0.5,
        },
        {
            "Class": "rviz_default_plugins/TF",
            "Name": "TF (odom -> base_link)",
            "Enabled": in_odom,
            "Value": in_odom,
            "Show Names": True,
            "Show Axes": True,
            "Show Arrows": False,
            "Marker Scale": 2,
        },
        _path_display("Plan (base_link)", node_topic(namespace, "output/path"), "25; 255; 0", True),
        _path_display(
            "Plan (odom; needs Fixed Frame odom)", node_topic(namespace, "output/path_odom"), "0; 170; 255", in_odom
        ),
        {
            "Class": "rviz_default_plugins/MarkerArray",
            "Name": "Reasoning markers",
            "Enabled": True,
            "Value": True,
            "Topic": _topic(node_topic(namespace, "output/markers")),
            "Namespaces": {"alpamayo": True},
        },
        {
            "Class": "rviz_default_plugins/Image",
            "Name": "Overlay (overlay.enabled:=true)",
            "Enabled": True,
            "Value": True,
            "Topic": _topic(node_topic(namespace, "output/overlay")),
            "Normalize Range": False,
        },
    ]
    displays += [
        {
            "Class": "rviz_default_plugins/Image",
            "Name": f"{cam} (enable to view)",
            "Enabled": False,
            "Value": False,
            "Topic": _topic(camera_topic(namespace, cam, camera_topic_prefix), "Best Effort"),
            "Normalize Range": False,
        }
        for cam in CAMERA_NAMES
    ]
    return {
        "Panels": [
            {"Class": "rviz_common/Displays", "Name": "Displays", "Help Height": 0, "Tree Height": 400},
            {"Class": "rviz_common/Views", "Name": "Views"},
            {"Class": "rviz_common/Time", "Name": "Time", "SyncMode": 0, "SyncSource": ""},
        ],
        "Visualization Manager": {
            "Class": "",
            "Enabled": True,
            "Name": "root",
            "Displays": displays,
            "Global Options": {"Background Color": "48; 48; 48", "Fixed Frame": fixed_frame, "Frame Rate": 30},
            "Tools": [
                {"Class": "rviz_default_plugins/MoveCamera"},
                {"Class": "rviz_default_plugins/Select"},
                {"Class": "rviz_default_plugins/Measure"},
            ],
            "Value": True,
            "Views": {
                "Current": {
                    "Class": "rviz_default_plugins/Orbit",
                    "Name": "Current View",
                    "Distance": 45.0,
                    "Focal Point": {"X": 18.0, "Y": 0.0, "Z": 0.0},
                    "Pitch": 0.6,
                    "Yaw": 3.14,
                    "Target Frame": "base_link",
                    "Value": "Orbit (rviz)",
                },
                "Saved": None,
            },
        },
        "Window Geometry": {"Height": 1000, "Width": 1600, "Displays": {"collapsed": False}},
    }


def render(namespace: str = "", fixed_frame: str = "base_link", camera_topic_prefix: str = "") -> str:
    """The config file text: a header saying how it was made, then the YAML of ``build_config``."""
    command = "python -m alpamayo_ros.tools.rviz_config"
    if namespace:
        command += f" --namespace {normalize_namespace(namespace)}"
    if fixed_frame != "base_link":
        command += f" --fixed-frame {fixed_frame}"
    if camera_topic_prefix:
        command += f" --camera-topic-prefix {camera_topic_prefix}"
    header = (
        "# RViz 2 config for alpamayo_node: plan, reasoning markers, overlay, TF and the seven camera images.\n"
        f"# Generated by `{command}`: regenerate rather than edit (--help for the options).\n"
    )
    return header + yaml.safe_dump(build_config(namespace, fixed_frame, camera_topic_prefix), sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alpamayo_ros.tools.rviz_config", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--namespace", default="", help="the node's namespace (launch argument namespace:=)")
    parser.add_argument("--fixed-frame", choices=FIXED_FRAMES, default="base_link", help="odom needs TF on /tf")
    parser.add_argument("--camera-topic-prefix", default="", help="as the launch argument camera_topic_prefix:=")
    parser.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        text = render(args.namespace, args.fixed_frame, args.camera_topic_prefix)
    except RvizConfigError as exc:
        print(f"rviz_config: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text)
    except OSError as exc:
        print(f"rviz_config: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
