"""Build-only launch: export ONNX and build (or validate cached) TensorRT engines, then shut down.

    ros2 launch alpamayo_ros build_engines.launch.py model:=/models/Alpamayo-R1-10B out:=/models/engines
    ros2 launch alpamayo_ros build_engines.launch.py model:=tiny out:=/tmp/engines export_only:=true

Runs `alpamayo-ros build-engines` (installed as lib/alpamayo_ros/alpamayo_cli) with the launch arguments below and
shuts the launch down when it exits. A failed build fails the launch: `ros2 launch` then exits non-zero (1) and its
log names the build's exit code (3 = TensorRT missing: ONNX exported only; 2 = the installed TensorRT cannot build
the requested precision / typing), so scripts and CI see it.
Point the node's `model.engine_dir` at the same `out` folder and select `model.backend:=tensorrt`.
"""

from __future__ import annotations

from typing import Any

import yaml
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
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
EXPORT_ONLY = "export_only"
# build-engines exit codes worth a sentence in the launch's error line (others: see the process output above it)
EXIT_MEANINGS = {
    2: "the installed TensorRT cannot build the requested precision / typing; its output says what to do",
    3: "TensorRT missing: ONNX exported only, no engines built",
}


class BuildEnginesFailedError(RuntimeError):
    """The build process exited non-zero; raised inside launch so that the launch itself exits non-zero."""


def _on_exit(event: ProcessExited, context: LaunchContext) -> list[Any]:
    """Shut down after the build. A failure is raised: launch exits non-zero only when an action raises."""
    if event.returncode != 0:
        meaning = EXIT_MEANINGS.get(event.returncode, "see its output above")
        raise BuildEnginesFailedError(f"alpamayo-ros build-engines exited with code {event.returncode} ({meaning})")
    return [EmitEvent(event=Shutdown(reason="engines built"))]


def _build(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Any]:
    cli = FindPackagePrefix("alpamayo_ros").perform(context) + "/lib/alpamayo_ros/alpamayo_cli"
    cmd = [cli, "build-engines"]
    for name in ARGUMENTS:
        cmd += ["--" + name.replace("_", "-"), LaunchConfiguration(name).perform(context)]
    if yaml.safe_load(LaunchConfiguration(EXPORT_ONLY).perform(context)):
        cmd.append("--export-only")
    build = ExecuteProcess(cmd=cmd, output="screen", name="build_engines")
    return [build, RegisterEventHandler(OnProcessExit(target_action=build, on_exit=_on_exit))]


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    args.append(
        DeclareLaunchArgument(
            EXPORT_ONLY,
            default_value="false",
            choices=["true", "false"],
            description="export and verify ONNX only (for the onnxruntime backend, or a machine without TensorRT)",
        )
    )
    return LaunchDescription([*args, OpaqueFunction(function=_build)])
