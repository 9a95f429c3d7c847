"""The ChainOfCausation interface end to end: between processes over DDS, and through an mcap rosbag2 file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from message_samples import coc_fields, make_coc, make_path
from support import start_process, stop_process, wait_until

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

PEERS = Path(__file__).resolve().parent / "peers"


def test_constants_cover_closed_sets() -> None:
    from alpamayo_ros.msg import CausalStep, ChainOfCausation, DrivingDecision

    longitudinal = {k for k in dir(DrivingDecision) if k.startswith("LONGITUDINAL_")}
    lateral = {k for k in dir(DrivingDecision) if k.startswith("LATERAL_")}
    assert {
        "LONGITUDINAL_UNKNOWN",
        "LONGITUDINAL_STOP",
        "LONGITUDINAL_YIELD",
        "LONGITUDINAL_DECELERATE",
        "LONGITUDINAL_FOLLOW",
        "LONGITUDINAL_KEEP_SPEED",
        "LONGITUDINAL_ACCELERATE",
    } == longitudinal
    assert {
        "LATERAL_UNKNOWN",
        "LATERAL_KEEP_LANE",
        "LATERAL_NUDGE_LEFT",
        "LATERAL_NUDGE_RIGHT",
        "LATERAL_LANE_CHANGE_LEFT",
        "LATERAL_LANE_CHANGE_RIGHT",
        "LATERAL_TURN_LEFT",
        "LATERAL_TURN_RIGHT",
    } == lateral
    assert DrivingDecision.LONGITUDINAL_UNKNOWN == 0 and DrivingDecision.LATERAL_UNKNOWN == 0
    assert len({getattr(DrivingDecision, k) for k in longitudinal}) == len(longitudinal)
    assert ChainOfCausation.AGREEMENT_UNKNOWN == 0
    assert {ChainOfCausation.AGREEMENT_AGREE, ChainOfCausation.AGREEMENT_DISAGREE} == {1, 2}
    assert CausalStep.ROLE_EVIDENCE != CausalStep.ROLE_DECISION != CausalStep.ROLE_ACTION


def test_outputs_cross_process_boundary(ros_env: dict[str, str]) -> None:
    from nav_msgs.msg import Path as PathMsg
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from alpamayo_ros.msg import ChainOfCausation

    rclpy.init()
    try:
        node = rclpy.create_node("sample_output_listener")
        got: dict[str, object] = {}
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(ChainOfCausation, "sample/reasoning", lambda m: got.setdefault("coc", m), qos)
        node.create_subscription(PathMsg, "sample/path", lambda m: got.setdefault("path", m), qos)
        proc = start_process([sys.executable, str(PEERS / "publish_outputs.py")], ros_env)
        try:
            ok = wait_until(lambda: len(got) == 2, 40.0, spin=lambda: rclpy.spin_once(node, timeout_sec=0.05))
        finally:
            node.destroy_node()
            out = stop_process(proc)
        assert ok, f"messages not received; publisher said:\n{out}"
    finally:
        rclpy.try_shutdown()

    assert got["coc"] == make_coc()
    path = got["path"]
    assert path == make_path()
    assert len(path.poses) == 64
    t0_ns = path.header.stamp.sec * 10**9 + path.header.stamp.nanosec
    stamps = [p.header.stamp.sec * 10**9 + p.header.stamp.nanosec for p in path.poses]
    assert stamps == [t0_ns + (i + 1) * 100_000_000 for i in range(64)]


def _rosbags_coc(store):  # type: ignore[no-untyped-def]
    """The same sample built from rosbags' generated classes (independent of rclpy's)."""
    t = store.types
    f = coc_fields()
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=f["stamp"][0], nanosec=f["stamp"][1]), frame_id=f["frame_id"]
    )
    decision = t["alpamayo_ros/msg/DrivingDecision"]
    p, v, r, a, tot = f["latency"]
    return t["alpamayo_ros/msg/ChainOfCausation"](
        header=header,
        reasoning_text=f["reasoning_text"],
        steps=[t["alpamayo_ros/msg/CausalStep"](role=role, text=text) for role, text in f["steps"]],
        reasoning_decision=decision(longitudinal=f["reasoning_decision"][0], lateral=f["reasoning_decision"][1]),
        trajectory_decision=decision(longitudinal=f["trajectory_decision"][0], lateral=f["trajectory_decision"][1]),
        agreement=f["agreement"],
        agreement_detail=f["agreement_detail"],
        model_name=f["model_name"],
        model_version=f["model_version"],
        num_generated_tokens=f["num_generated_tokens"],
        truncated=f["truncated"],
        reasoning_uncertainty=f["reasoning_uncertainty"],
        sample_index=f["sample_index"],
        num_samples=f["num_samples"],
        latency=t["alpamayo_ros/msg/StageLatency"](
            preprocess_ms=p, vision_ms=v, reasoning_ms=r, action_ms=a, total_ms=tot
        ),
    )


def assert_same_cdr(ours: bytes, rclpy_bytes: bytes) -> None:
    """Byte-for-byte equality except CDR alignment padding.

    rclpy (Fast CDR) leaves padding bytes uninitialised (they differ run to run), rosbags zeroes them. So the bytes
    must agree everywhere except at positions where rosbags wrote a zero, and such positions may only be the
    1-3 bytes before a 2/4/8-aligned field.
    """
    assert len(ours) == len(rclpy_bytes), (len(ours), len(rclpy_bytes))
    differing = [i for i, (a, b) in enumerate(zip(ours, rclpy_bytes, strict=True)) if a != b]
    assert all(ours[i] == 0 for i in differing), "rosbags and rclpy disagree on a non-padding byte"
    # Each differing byte must sit in a padding gap: rosbags wrote zeros from it up to the next 4-byte-aligned
    # payload offset (offsets count after the 4-byte encapsulation header; this message's widest field is 4 bytes).
    for i in differing:
        rel = i - 4
        boundary = (rel // 4 + 1) * 4
        assert all(b == 0 for b in ours[i : boundary + 4]), f"byte {i} differs but is not alignment padding"


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_roundtrip_matches_rclpy_serialization(tmp_path: Path, storage: str) -> None:
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    from alpamayo_ros.interfaces import typestore
    from alpamayo_ros.msg import ChainOfCausation

    store = typestore()
    original = _rosbags_coc(store)
    typename = "alpamayo_ros/msg/ChainOfCausation"
    cdr = store.serialize_cdr(original, typename)
    assert_same_cdr(bytes(cdr), serialize_message(make_coc()))

    bag = tmp_path / "coc_bag"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(bag, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection("/alpamayo/output/reasoning", typename, typestore=store)
        writer.write(conn, 1_700_000_000_123_456_789, cdr)

    with Reader(bag) as reader:
        records = list(reader.messages())
    assert len(records) == 1
    conn, timestamp, raw = records[0]
    assert conn.msgtype == typename and timestamp == 1_700_000_000_123_456_789
    assert store.deserialize_cdr(raw, typename) == original
    assert deserialize_message(bytes(raw), ChainOfCausation) == make_coc()
    if storage == "mcap":
        assert next(bag.glob("*.mcap")).stat().st_size > 0


def test_cdr_matches_rclpy_for_varied_lengths() -> None:
    """Strings and step lists of every length mod 4/8 shift the alignment: bytes still agree (padding aside)."""
    from rclpy.serialization import serialize_message

    from alpamayo_ros.interfaces import typestore
    from alpamayo_ros.msg import CausalStep

    store = typestore()
    typename = "alpamayo_ros/msg/ChainOfCausation"
    for n in range(12):
        msg = make_coc()
        msg.reasoning_text = "r" * n
        msg.agreement_detail = "d" * (11 - n)
        msg.steps = [CausalStep(role=n % 4, text="s" * k) for k in range(n % 5)]
        raw = serialize_message(msg)
        decoded = store.deserialize_cdr(raw, typename)
        assert decoded.reasoning_text == msg.reasoning_text and len(decoded.steps) == len(msg.steps)
        assert_same_cdr(bytes(store.serialize_cdr(decoded, typename)), raw)
