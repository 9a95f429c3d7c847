"""Child process for test_fastdds_profile: publishes 1080p rgb8 images BEST_EFFORT until the subscriber leaves."""

from __future__ import annotations

import sys
import time

from alpamayo_ros.rosenv import apply_ros_defaults

apply_ros_defaults()

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402


def main() -> int:
    rclpy.init()
    node = rclpy.create_node("large_image_publisher")
    pub = node.create_publisher(Image, "sample/image_1080p", qos_profile_sensor_data)
    msg = Image(height=1080, width=1920, encoding="rgb8", step=1920 * 3)
    msg.data = np.full((1080, 1920, 3), 77, np.uint8).tobytes()
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and pub.get_subscription_count() < 1:
        rclpy.spin_once(node, timeout_sec=0.05)
    sent = 0
    while time.monotonic() < deadline and pub.get_subscription_count() > 0:
        msg.header.frame_id = str(sent)
        pub.publish(msg)
        sent += 1
        rclpy.spin_once(node, timeout_sec=0.1)
    print(f"sent {sent}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
