"""Build-only launch: export ONNX and build (or validate cached) TensorRT engines, then shut down.

    ros2 launch alpamayo_ros build_engines.launch.py model:=/models/Alpamayo-R1-10B out:=/models/engines

Runs `alpamayo-ros build-engines` (installed as lib/alpamayo_ros/alpamayo_cli) with the launch arguments below and
shuts the launch down when it exits, with its exit code in the log (3 = TensorRT missing: ONNX exported only;
2 = the installed TensorRT cannot build the requested precision / typing, the log says what to do).
Point the node's `model.engine_dir` at the same `out` folder and select `model.backend:=tensorrt`.
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackagePrefix

ARGUMENTS = {
    "model": ("default", "checkpoint directory, or default / tiny"),
    "out": ("engines", "output folder: ONNX exports + manifest, engines/ below"),
    "precision_vision": ("bf16", "vision encoder engine precision: fp32 | fp16 | bf16"),
    "precision_expert": ("bf16", "expert step engine precision: fp32 | fp16 | bf16"),
    "typing": ("strong", "TensorRT network typing: strong (10.12+ and 11) | weak (legacy, TensorRT 10.x only)"),
    "camera_size": ("1080x1920", "raw camera frame size HxW (sets the image grid)"),
    "max_reasoning_tokens": ("128", "reasoning budget (sets the expert's prefix capacity)"),
    "num_samples": ("1", "trajectory samples per input"),
}


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    cli = PathJoinSubstitution([FindPackagePrefix("alpamayo_ros"), "lib", "alpamayo_ros", "alpamayo_cli"])
    build = ExecuteProcess(
        cmd=[
            cli,
            "build-engines",
            "--model",
            LaunchConfiguration("model"),
            "--out",
            LaunchConfiguration("out"),
            "--precision-vision",
            LaunchConfiguration("precision_vision"),
            "--precision-expert",
            LaunchConfiguration("precision_expert"),
            "--typing",
            LaunchConfiguration("typing"),
            "--camera-size",
            LaunchConfiguration("camera_size"),
            "--max-reasoning-tokens",
            LaunchConfiguration("max_reasoning_tokens"),
            "--num-samples",
            LaunchConfiguration("num_samples"),
        ],
        output="screen",
        name="build_engines",
    )
    done = RegisterEventHandler(OnProcessExit(target_action=build, on_exit=[EmitEvent(event=Shutdown())]))
    return LaunchDescription([*args, build, done])
