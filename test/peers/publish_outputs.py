"""Child process for test_messages: publishes the sample ChainOfCausation and Path once a subscriber matches,
then stays until the subscriber goes away (so reliable delivery can complete) or a deadline passes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpamayo_ros.rosenv import apply_ros_defaults

apply_ros_defaults()

import rclpy  # noqa: E402
from nav_msgs.msg import Path as PathMsg  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from alpamayo_ros.msg import ChainOfCausation  # noqa: E402

from message_samples import make_coc, make_path  # noqa: E402


def main() -> int:
    rclpy.init()
    node = rclpy.create_node("sample_output_publisher")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub_coc = node.create_publisher(ChainOfCausation, "sample/reasoning", qos)
    pub_path = node.create_publisher(PathMsg, "sample/path", qos)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and (
        pub_coc.get_subscription_count() < 1 or pub_path.get_subscription_count() < 1
    ):
        rclpy.spin_once(node, timeout_sec=0.05)
    if pub_coc.get_subscription_count() < 1:
        print("no subscriber matched within 30 s", flush=True)
        return 1
    pub_coc.publish(make_coc())
    pub_path.publish(make_path())
    print("published", flush=True)
    while time.monotonic() < deadline and pub_coc.get_subscription_count() > 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
