"""Launch alpamayo_node (and optionally RViz 2).

    ros2 launch alpamayo_ros alpamayo.launch.py [params_file:=...] [use_sim_time:=true] [rviz:=true]
        [model.backend:=torch] [model.model_path:=/path/to/checkpoint] [odometry_topic:=/localization/odometry]
        [<any node parameter>:=<value>] [camera_topic_prefix:=/sensing/camera]

Every node parameter is a launch argument of the same name. Their defaults are empty, meaning "not given here":
the values then come from params_file (by default the package's config/alpamayo.yaml, generated from
alpamayo_ros/core/params.py), so defaults live in exactly one place.
"""

from __future__ import annotations

from typing import Any

import yaml
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

from alpamayo_ros.core.params import NODE_NAME, PARAM_SPECS
from alpamayo_ros.core.rig import CAMERA_NAMES

PACKAGE = "alpamayo_ros"


def _node(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Any]:
    overrides: dict[str, Any] = {}
    for spec in PARAM_SPECS:
        text = LaunchConfiguration(spec.name).perform(context)
        if text != "":
            overrides[spec.name] = yaml.safe_load(text)
    prefix = LaunchConfiguration("camera_topic_prefix").perform(context).rstrip("/")
    if prefix:
        for cam in CAMERA_NAMES:
            overrides.setdefault(f"cameras.{cam}.topic", f"{prefix}/{cam}/image_raw")
    use_sim_time = yaml.safe_load(LaunchConfiguration("use_sim_time").perform(context))
    remappings = [("~/input/odometry", LaunchConfiguration("odometry_topic").perform(context))]
    node = LifecycleNode(
        package=PACKAGE,
        executable="alpamayo_node",
        name=NODE_NAME,
        namespace=LaunchConfiguration("namespace").perform(context),
        output="screen",
        parameters=[LaunchConfiguration("params_file").perform(context), overrides, {"use_sim_time": use_sim_time}],
        remappings=remappings,
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level").perform(context)],
    )
    return [node]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "alpamayo.yaml"]),
            description="node parameter file (every parameter, documented)",
        ),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz 2 with rviz/alpamayo.rviz"),
        DeclareLaunchArgument(
            "rviz_config", default_value=PathJoinSubstitution([share, "rviz", "alpamayo.rviz"]), description="RViz file"
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
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", LaunchConfiguration("rviz_config")],
        parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="log",
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=_node), rviz])
