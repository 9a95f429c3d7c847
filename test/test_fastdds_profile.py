"""The shipped Fast DDS profile: 1080p images reach a BEST_EFFORT subscriber in another process.

With Fast DDS defaults such frames (6 MB) are silently dropped for best-effort readers; this is the failure the
profile exists to prevent, so the test runs the real transport between two processes.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from alpamayo_ros.rosenv import apply_ros_defaults, fastdds_profile_path

from support import start_process, stop_process, wait_until

PEERS = Path(__file__).resolve().parent / "peers"


def test_profile_is_shipped_and_well_formed() -> None:
    path = fastdds_profile_path()
    assert path.is_file(), path
    root = ET.parse(path).getroot()
    ns = {"d": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    kinds = [t.text for t in root.iterfind(".//d:transport_descriptor/d:type", ns)]
    assert kinds == ["SHM", "UDPv4"]
    assert int(root.find(".//d:segment_size", ns).text) >= 6 * 1920 * 1080 * 3  # several 1080p frames in flight
    assert root.find(".//d:participant", ns).get("is_default_profile") == "true"


def test_user_setting_wins() -> None:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": "/somewhere/else.xml"}
    apply_ros_defaults(env)
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == "/somewhere/else.xml"
    fresh: dict[str, str] = {}
    apply_ros_defaults(fresh)
    assert fresh["FASTDDS_DEFAULT_PROFILES_FILE"] == str(fastdds_profile_path())


def test_rejects_an_rmw_the_wheels_do_not_have() -> None:
    if os.environ.get("ROS_DISTRO"):
        pytest.skip("a ROS 2 install may provide other RMWs")
    with pytest.raises(RuntimeError, match="rmw_cyclonedds_cpp"):
        apply_ros_defaults({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})


@pytest.mark.ros
def test_1080p_best_effort_between_processes(ros_env: dict[str, str]) -> None:
    rclpy = pytest.importorskip("rclpy")
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    assert ros_env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(fastdds_profile_path())
    rclpy.init()
    try:
        node = rclpy.create_node("large_image_listener")
        received: list[Image] = []
        node.create_subscription(Image, "sample/image_1080p", received.append, qos_profile_sensor_data)
        proc = start_process([sys.executable, str(PEERS / "publish_large_images.py")], ros_env)
        try:
            ok = wait_until(lambda: len(received) >= 3, 40.0, spin=lambda: rclpy.spin_once(node, timeout_sec=0.05))
        finally:
            node.destroy_node()
            out = stop_process(proc)
        assert ok, f"only {len(received)} 1080p frames arrived; publisher said:\n{out}"
    finally:
        rclpy.try_shutdown()
    first = received[0]
    assert (first.width, first.height, len(first.data)) == (1920, 1080, 1920 * 1080 * 3)
    assert bytes(first.data[:3]) == b"MMM"  # 77 = 'M'
