"""Entry points of the planning node: ``alpamayo_node`` (console script, ``ros2 run``) and ``alpamayo-ros node``.

The process lives as long as the node: it spins until Ctrl-C, an external shutdown or the node's lifecycle shutdown
transition, then releases the model and exits 0, so a supervisor or ``ros2 launch`` sees that the node is gone.
"""

from __future__ import annotations

import argparse
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from alpamayo_ros.core.diagnostics import Lifecycle
from alpamayo_ros.core.model_setup import ModelLoader
from alpamayo_ros.nodes.alpamayo_node import AlpamayoNode, load_model_from_registry
from alpamayo_ros.nodes.ros_glue import stop_forwarding
from alpamayo_ros.rosenv import apply_ros_defaults

__all__ = ["add_arguments", "main", "run", "spin"]

SHUTDOWN_GRACE_SEC = 0.5  # spinning on after the lifecycle shutdown transition, so its service reply is delivered


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ros-args",
        dest="ros_args",
        nargs=argparse.REMAINDER,
        default=[],
        help="ROS arguments, e.g. --ros-args -p model.backend:=test_policy --params-file config/alpamayo.yaml",
    )


def run(args: argparse.Namespace) -> int:
    ros_args = list(args.ros_args or [])
    return spin(["alpamayo_node", "--ros-args", *ros_args] if ros_args else ["alpamayo_node"])


def main() -> int:
    return spin(sys.argv)


def spin(argv: list[str], load_model: ModelLoader = load_model_from_registry) -> int:
    """Run the node until Ctrl-C, an external shutdown or its lifecycle shutdown transition; returns 0.

    ``load_model`` turns the configured model spec into a model; tests pass their own to inject failures.
    """
    apply_ros_defaults()
    rclpy.init(args=argv)
    node = AlpamayoNode(load_model=load_model)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.params.node.autostart:
            node.trigger_configure()
            if node.lifecycle is Lifecycle.INACTIVE:
                node.trigger_activate()
        while rclpy.ok() and node.lifecycle is not Lifecycle.FINALIZED:
            executor.spin_once(timeout_sec=0.1)
        grace_end = time.monotonic() + SHUTDOWN_GRACE_SEC  # let the reply to the shutdown request go out
        while rclpy.ok() and time.monotonic() < grace_end:
            executor.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.release()
        stop_forwarding(node.log_handler)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
