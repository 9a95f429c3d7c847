"""Bags: synth output read back; rosbags CDR == rclpy serialize_message; mcap and sqlite3."""

from __future__ import annotations

import json
import sqlite3
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

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
    assert topics[bagio.TF_TOPIC] == (bagio.TF, 175)
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


def test_tf_is_odom_to_base_link_at_every_odometry_pose(tiny_bag: Path) -> None:
    """RViz with fixed frame odom places base_link data (the plan) with /tf: it must be the odometry pose itself."""
    odom, tf = {}, {}
    for rec in bagio.read_bags([tiny_bag], [bagio.ODOM_TOPIC, bagio.TF_TOPIC]):
        msg = bagio.deserialize(rec.raw, rec.typename)
        if rec.topic == bagio.ODOM_TOPIC:
            odom[rec.log_time_ns] = msg
        else:
            (tf[rec.log_time_ns],) = msg.transforms
    assert len(tf) == len(odom) == 175 and tf.keys() == odom.keys()
    for ns, t in tf.items():
        pose = odom[ns].pose.pose
        assert bagio.stamp_ns(t.header.stamp) == ns == bagio.stamp_ns(odom[ns].header.stamp)
        assert (t.header.frame_id, t.child_frame_id) == ("odom", "base_link")
        assert (t.transform.translation.x, t.transform.translation.y) == (pose.position.x, pose.position.y)
        assert (t.transform.rotation.z, t.transform.rotation.w) == (pose.orientation.z, pose.orientation.w)
    moved = [odom[ns].pose.pose.position.x for ns in sorted(odom)]
    assert moved[-1] - moved[0] > 10.0  # a driving scenario, not a constant transform


def _mcap_records(path: Path) -> list[tuple[int, bytes]]:
    """Top-level (opcode, content) records of an MCAP file (the summary section repeats every channel)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89MCAP0\r\n"
    records, pos = [], 8
    while pos < len(data) - 8:
        opcode, length = struct.unpack_from("<BQ", data, pos)
        records.append((opcode, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return records


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return buf[pos + 4 : pos + 4 + n].decode(), pos + 4 + n


def _string_map(buf: bytes, pos: int) -> dict[str, str]:
    (size,) = struct.unpack_from("<I", buf, pos)
    pos, end, out = pos + 4, pos + 4 + size, {}
    while pos < end:
        key, pos = _string(buf, pos)
        out[key], pos = _string(buf, pos)
    return out


def test_bags_say_kilted_and_mcap_channels_carry_the_type_hash(tiny_bag: Path) -> None:
    """What rosbag2 on kilted writes: ros_distro (metadata.yaml and the mcap's own copy) and topic_type_hash."""
    info = yaml.safe_load((tiny_bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["ros_distro"] == "kilted"
    hashes = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["type_description_hash"]
        for t in info["topics_with_message_count"]
    }
    (mcap,) = tiny_bag.glob("*.mcap")
    channels, embedded = {}, None
    for opcode, content in _mcap_records(mcap):
        if opcode == 0x04:  # Channel: id, schema id, topic, encoding, metadata
            topic, pos = _string(content, 4)
            _, pos = _string(content, pos)
            channels[topic] = _string_map(content, pos)
        elif opcode == 0x0C:  # Metadata: name, map
            name, pos = _string(content, 0)
            if name == "rosbag2":
                embedded = yaml.safe_load(_string_map(content, pos)["serialized_metadata"])
    assert set(channels) == set(hashes)
    for topic, metadata in channels.items():
        assert metadata["topic_type_hash"] == hashes[topic] and hashes[topic].startswith("RIHS01_")
        assert "offered_qos_profiles" in metadata
    assert embedded is not None and embedded["ros_distro"] == "kilted"


def test_sqlite3_bags_say_kilted(tmp_path: Path) -> None:
    out = tmp_path / "bag"
    write_scenario_bag(generate("free_road", 0, 2.0, 32, 18), out, storage="sqlite3", progress=False)
    assert yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["ros_distro"] == "kilted"
    (db,) = out.glob("*.db3")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT ros_distro FROM schema").fetchall() == [("kilted",)]
        (stored,) = conn.execute("SELECT metadata FROM metadata").fetchone()
    assert yaml.safe_load(stored)["ros_distro"] == "kilted"
    assert bagio.bag_problem(out) is None and sum(t.count for t in bagio.bag_topics(out)) > 0


def test_bag_problem_says_what_is_wrong_in_one_line(tiny_bag: Path, broken_bags: dict[str, tuple[Path, str]]) -> None:
    assert bagio.bag_problem(tiny_bag) is None
    (mcap,) = tiny_bag.glob("*.mcap")
    assert bagio.bag_problem(mcap) is None  # a bare .mcap is a bag too
    for name, (path, expected) in broken_bags.items():
        problem = bagio.bag_problem(path)
        assert problem is not None and expected in problem and str(path) in problem, (name, problem)
        assert "\n" not in problem, (name, problem)
        with pytest.raises(bagio.BagError, match=r"rosbag2|exist"):
            bagio.bag_topics(path)


def test_type_hashes_are_the_ones_rosidl_generated(tiny_bag: Path) -> None:
    """topic_type_hash must equal what a kilted rclpy peer announces: rosidl's share/<pkg>/msg/<Type>.json."""
    info = yaml.safe_load((tiny_bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    compared = 0
    for topic in info["topics_with_message_count"]:
        meta = topic["topic_metadata"]
        pkg, kind, name = meta["type"].split("/")
        described = Path(sys.prefix) / "share" / pkg / kind / f"{name}.json"
        if not described.is_file():  # e.g. tf2_msgs: no wheel, so no rosidl description here
            continue
        hashes = {h["type_name"]: h["hash_string"] for h in json.loads(described.read_text())["type_hashes"]}
        assert meta["type_description_hash"] == hashes[meta["type"]], meta["name"]
        compared += 1
    assert compared >= 5  # images, camera info, odometry, path, ChainOfCausation
