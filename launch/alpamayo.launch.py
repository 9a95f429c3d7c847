"""Launch alpamayo_node (and optionally RViz 2).

    ros2 launch alpamayo_ros alpamayo.launch.py [params_file:=...] [use_sim_time:=true] [rviz:=true]
        [model.backend:=torch] [model.model_path:=/path/to/checkpoint] [odometry_topic:=/localization/odometry]
        [<any node parameter>:=<value>] [camera_topic_prefix:=/sensing/camera] [namespace:=veh1]

Every node parameter is a launch argument of the same name. Their defaults are empty, meaning "not given here":
the values then come from params_file (by default the package's config/alpamayo.yaml, generated from
alpamayo_ros/core/params.py), so defaults live in exactly one place. Values are read as YAML, like ``ros2 run
... -p``: ``planning_rate_hz:=5.0`` is a double, ``overlay.mount_xyz_m:=[1.7,0.0,1.5]`` a double array.

With ``rviz:=true`` and no ``rviz_config``, RViz gets the config generated for this namespace, camera topic prefix
and ``rviz_fixed_frame`` (alpamayo_ros.tools.rviz_config); the shipped rviz/alpamayo.rviz is the root namespace's.
"""

from __future__ import annotations

import tempfile
from typing import Any

import yaml
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

from alpamayo_ros.core.params import NODE_NAME, PARAM_SPECS
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.tools import rviz_config

PACKAGE = "alpamayo_ros"


def _argument(context: LaunchContext, name: str) -> str:
    return str(LaunchConfiguration(name).perform(context))


def _node(context: LaunchContext) -> LifecycleNode:
    overrides: dict[str, Any] = {}
    for spec in PARAM_SPECS:
        text = _argument(context, spec.name)
        if text != "":
            overrides[spec.name] = yaml.safe_load(text)
    prefix = _argument(context, "camera_topic_prefix").rstrip("/")
    if prefix:
        for cam in CAMERA_NAMES:
            overrides.setdefault(f"cameras.{cam}.topic", f"{prefix}/{cam}/image_raw")
    use_sim_time = yaml.safe_load(_argument(context, "use_sim_time"))
    return LifecycleNode(
        package=PACKAGE,
        executable="alpamayo_node",
        name=NODE_NAME,
        namespace=_argument(context, "namespace"),
        output="screen",
        parameters=[_argument(context, "params_file"), overrides, {"use_sim_time": use_sim_time}],
        remappings=[("~/input/odometry", _argument(context, "odometry_topic"))],
        arguments=["--ros-args", "--log-level", _argument(context, "log_level")],
    )


def _rviz(context: LaunchContext) -> Node:
    """RViz 2 with rviz_config, or with a config generated for the node's namespace (topics are absolute there)."""
    config = _argument(context, "rviz_config")
    if not config:
        text = rviz_config.render(
            _argument(context, "namespace"),
            _argument(context, "rviz_fixed_frame"),
            _argument(context, "camera_topic_prefix"),
        )
        with tempfile.NamedTemporaryFile("w", prefix="alpamayo_", suffix=".rviz", delete=False) as file:
            file.write(text)
        config = file.name
    return Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=_argument(context, "namespace"),
        arguments=["-d", config],
        parameters=[{"use_sim_time": yaml.safe_load(_argument(context, "use_sim_time"))}],
        output="log",
    )


def _actions(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Any]:
    actions: list[Any] = [_node(context)]
    if yaml.safe_load(_argument(context, "rviz")):
        actions.append(_rviz(context))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "alpamayo.yaml"]),
            description="node parameter file (every parameter, documented)",
        ),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz 2"),
        DeclareLaunchArgument(
            "rviz_config", default_value="", description="RViz file (empty: generated for namespace and prefix)"
        ),
        DeclareLaunchArgument(
            "rviz_fixed_frame",
            default_value="base_link",
            choices=list(rviz_config.FIXED_FRAMES),
            description="generated RViz config's fixed frame (odom needs odom -> base_link on /tf)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("odometry_topic", default_value="~/input/odometry", description="nav_msgs/Odometry in"),
        DeclareLaunchArgument(
            "camera_topic_prefix",
            default_value="",
            description="if set, camera topics default to <prefix>/<camera>/image_raw",
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    arguments += [
        DeclareLaunchArgument(spec.name, default_value="", description=f"{spec.description} (empty: params_file)")
        for spec in PARAM_SPECS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_actions)])
