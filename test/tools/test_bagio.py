"""Bags: synth output read back; rosbags CDR == rclpy serialize_message; mcap and sqlite3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.sim import generate
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.synth import load_sidecar, write_scenario_bag

TINY_W, TINY_H = 160, 90  # the size conftest.tiny_bag renders at


def test_synth_bag_topics_counts_and_sidecar(tiny_bag: Path) -> None:
    topics = {t.topic: (t.typename, t.count) for t in bagio.bag_topics(tiny_bag)}
    for cam in CAMERA_NAMES:
        assert topics[bagio.image_topic(cam)] == (bagio.IMAGE, 35)
        assert topics[bagio.camera_info_topic(cam)] == (bagio.CAMERA_INFO, 35)
    assert topics[bagio.ODOM_TOPIC] == (bagio.ODOMETRY, 175)
    assert topics[bagio.GT_PATH_TOPIC] == (bagio.PATH, 35)
    assert topics[bagio.GT_REASONING_TOPIC] == (bagio.COC, 35)
    side = load_sidecar(tiny_bag)
    assert side is not None and side["scenario"] == "lead_vehicle_braking" and side["width"] == TINY_W
    assert set(side["rig"]) == set(CAMERA_NAMES)


def test_messages_read_back_equal_what_the_generator_made(tiny_bag: Path) -> None:
    gen = generate("lead_vehicle_braking", 3, 3.5, TINY_W, TINY_H)
    ticks = list(gen.ticks())
    front = bagio.image_topic("camera_front_wide_120fov")
    got_images, got_paths, got_labels = [], [], []
    last = -1
    for rec in bagio.read_bags([tiny_bag]):
        assert rec.log_time_ns >= last
        last = rec.log_time_ns
        msg = bagio.deserialize(rec.raw, rec.typename)
        if rec.topic == front:
            got_images.append(msg)
        elif rec.topic == bagio.GT_PATH_TOPIC:
            got_paths.append(msg)
        elif rec.topic == bagio.GT_REASONING_TOPIC:
            got_labels.append(msg)
    assert len(got_images) == len(ticks)
    for tick, img, path, coc in zip(ticks, got_images, got_paths, got_labels, strict=True):
        assert bagio.stamp_ns(img.header.stamp) == tick.stamp_ns
        assert img.encoding == "rgb8" and (img.width, img.height) == (TINY_W, TINY_H)
        assert np.array_equal(np.frombuffer(img.data, np.uint8).reshape(TINY_H, TINY_W, 3), tick.images[1])
        assert bagio.stamp_ns(path.header.stamp) == tick.stamp_ns and len(path.poses) == 64
        assert bagio.stamp_ns(path.poses[0].header.stamp) == tick.stamp_ns + 100_000_000
        xy = np.array([[p.pose.position.x, p.pose.position.y] for p in path.poses])
        assert np.allclose(xy, tick.future[:, :2])
        assert coc.reasoning_text == tick.label.text
        assert coc.reasoning_decision.longitudinal == int(tick.label.longitudinal)


def test_cdr_bytes_equal_rclpy_serialization() -> None:
    rclpy_ser = pytest.importorskip("rclpy.serialization")
    from nav_msgs.msg import Odometry
    from nav_msgs.msg import Path as PathMsg
    from sensor_msgs.msg import CameraInfo, Image

    rgb = (np.arange(4 * 6 * 3) % 251).astype(np.uint8).reshape(4, 6, 3)
    ours = bagio.image_msg(1_000_000_123, "camera_front_wide_120fov", rgb)
    ref = Image()
    ref.header.stamp.sec, ref.header.stamp.nanosec = 1, 123
    ref.header.frame_id = "camera_front_wide_120fov_optical"
    ref.height, ref.width, ref.encoding, ref.step, ref.data = 4, 6, "rgb8", 18, rgb.tobytes()
    ours_cdr, ref_cdr = bagio.serialize(ours, bagio.IMAGE), rclpy_ser.serialize_message(ref)
    # Same layout and content; only alignment padding may differ (Fast CDR does not zero it, rosbags does).
    assert len(ours_cdr) == len(ref_cdr)
    assert rclpy_ser.deserialize_message(ours_cdr, Image) == ref
    back_ours = bagio.deserialize(ref_cdr, bagio.IMAGE)
    assert back_ours.header.frame_id == ours.header.frame_id and bytes(back_ours.data) == rgb.tobytes()
    assert bagio.serialize(back_ours, bagio.IMAGE) == ours_cdr

    odom = bagio.odometry_msg(5_500_000_000, 1.0, 2.0, 0.3, v_mps=7.0, yaw_rate=0.1)
    back = rclpy_ser.deserialize_message(bagio.serialize(odom, bagio.ODOMETRY), Odometry)
    assert back.header.stamp.sec == 5 and back.header.stamp.nanosec == 500_000_000
    assert back.pose.pose.position.x == 1.0 and back.twist.twist.linear.x == 7.0
    assert back.pose.pose.orientation.z == pytest.approx(np.sin(0.15))
    assert bagio.serialize(bagio.deserialize(rclpy_ser.serialize_message(back), bagio.ODOMETRY), bagio.ODOMETRY) == (
        bagio.serialize(odom, bagio.ODOMETRY)
    )

    path = bagio.path_msg(10**9, np.column_stack([np.arange(64.0), np.zeros(64), np.zeros(64)]))
    back_path = rclpy_ser.deserialize_message(bagio.serialize(path, bagio.PATH), PathMsg)
    assert len(back_path.poses) == 64 and back_path.poses[63].pose.position.x == 63.0
    info = bagio.camera_info_msg(0, "camera_front_tele_30fov", 6, 4, np.eye(3))
    back_info = rclpy_ser.deserialize_message(bagio.serialize(info, bagio.CAMERA_INFO), CameraInfo)
    assert list(back_info.k) == list(np.eye(3).reshape(9)) and back_info.width == 6


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_storage_plugins_and_compressed_images(tmp_path: Path, storage: str) -> None:
    gen = generate("curve_left", 1, 2.0, 64, 36)
    out = tmp_path / "bag"
    write_scenario_bag(gen, out, compressed=True, storage=storage, clock=True, progress=False)
    topics = {t.topic: t for t in bagio.bag_topics(out)}
    comp = topics[bagio.image_topic("camera_front_tele_30fov", compressed=True)]
    assert comp.typename == bagio.COMPRESSED and comp.count == 20
    assert topics[bagio.CLOCK_TOPIC].count == 200
    rec = next(bagio.read_bags([out], [comp.topic]))
    msg = bagio.deserialize(rec.raw, rec.typename)
    assert bytes(msg.data[:2]) == b"\xff\xd8"  # JPEG
    with pytest.raises(bagio.BagError, match="already exists"):
        bagio.BagWriter(out, storage)
