"""play -> record between processes (raw bytes and timing preserved), and the demo end to end:
player -> node (test policy) -> recorder as separate processes, outputs stamped with the bag's t0."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.tools import bagio

pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from support import start_process, stop_process  # noqa: E402

CLI = [sys.executable, "-m", "alpamayo_ros.cli"]
FRONT = bagio.image_topic("camera_front_wide_120fov")


def _records(bag: Path, topics: list[str]) -> dict[str, list[bagio.BagRecord]]:
    out: dict[str, list[bagio.BagRecord]] = {t: [] for t in topics}
    for rec in bagio.read_bags([bag], topics):
        out[rec.topic].append(rec)
    return out


def test_play_record_between_processes_preserves_bytes_and_timing(
    tiny_bag: Path, tmp_path: Path, ros_env: dict[str, str]
) -> None:
    topics = [bagio.ODOM_TOPIC, bagio.GT_PATH_TOPIC, FRONT]
    recorded = tmp_path / "rec"
    recorder = start_process([*CLI, "record", "--out", str(recorded), "--idle-timeout", "2", *topics], ros_env)
    player = start_process([*CLI, "play", str(tiny_bag), "--wait-for-subscribers", *topics], ros_env)
    try:
        player_out, _ = player.communicate(timeout=60)
        recorder_out, _ = recorder.communicate(timeout=30)
    finally:
        player_log, recorder_log = stop_process(player), stop_process(recorder)
    assert player.returncode == 0, player_log
    assert recorder.returncode == 0 and "stopped (idle" in recorder_out, recorder_out + recorder_log
    original, got = _records(tiny_bag, topics), _records(recorded, topics)
    for topic in topics:
        assert len(got[topic]) == len(original[topic]), f"{topic}\n{player_out}\n{recorder_out}"
        assert [r.raw for r in got[topic]] == [r.raw for r in original[topic]], topic
    # timing: receive times follow the bag's spacing (50 Hz odometry over 3.5 s)
    bag_t = np.array([r.log_time_ns for r in original[bagio.ODOM_TOPIC]], dtype=np.float64) / 1e9
    rec_t = np.array([r.log_time_ns for r in got[bagio.ODOM_TOPIC]], dtype=np.float64) / 1e9
    drift = (rec_t - rec_t[0]) - (bag_t - bag_t[0])
    # generous bounds: three engineers' test suites share two cores
    assert abs(drift[-1]) < 0.5 and np.median(np.abs(drift)) < 0.2, drift


def test_player_rate_offset_and_topic_filter(tiny_bag: Path, tmp_path: Path, ros_env: dict[str, str]) -> None:
    recorded = tmp_path / "rec"
    recorder = start_process(
        [*CLI, "record", "--out", str(recorded), "--idle-timeout", "1.5", bagio.ODOM_TOPIC], ros_env
    )
    player = start_process(
        [
            *CLI,
            "play",
            str(tiny_bag),
            "--rate",
            "2",
            "--start-offset",
            "2",
            "--topics",
            bagio.ODOM_TOPIC,
            "--wait-for-subscribers",
            bagio.ODOM_TOPIC,
        ],
        ros_env,
    )
    try:
        player.communicate(timeout=60)
        recorder.communicate(timeout=30)
    finally:
        stop_process(player)
        stop_process(recorder)
    got = _records(recorded, [bagio.ODOM_TOPIC])[bagio.ODOM_TOPIC]
    assert len(got) == 75  # 3.5 s - 2 s offset at 50 Hz
    span = (got[-1].log_time_ns - got[0].log_time_ns) / 1e9
    assert 0.55 < span < 1.1  # 1.48 s of bag at rate 2
    assert {t.topic for t in bagio.bag_topics(recorded)} == {bagio.ODOM_TOPIC}


def test_demo_end_to_end_with_test_policy(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """demo = synth + node + recorder + player as processes; the recorded plans carry the bag's anchor stamps."""
    out = tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "--seconds",
        "3.5",
        "--width",
        "160",
        "--height",
        "90",
        "--backend",
        "test_policy",
        "--rate",
        "1",
        "--idle-timeout",
        "3",
        "--startup-timeout",
        "90",
    ]
    demo = start_process([*CLI, *args], ros_env)
    try:
        log, _ = demo.communicate(timeout=180)
    finally:
        log_tail = stop_process(demo)
    assert demo.returncode == 0, log + log_tail
    assert "report:" in log and "plans published by the node:" in log

    scenario = next((out / "bags").iterdir())
    anchors = [
        bagio.stamp_ns(bagio.deserialize(r.raw, r.typename).header.stamp) for r in bagio.read_bags([scenario], [FRONT])
    ]
    plannable = {t for t in anchors if t - anchors[0] >= 1_500_000_000}  # 1.5 s of ego history first
    outputs = out / "run" / "node_outputs"
    path_topic, coc_topic = "/alpamayo_node/output/path", "/alpamayo_node/output/reasoning"
    recs = _records(outputs, [path_topic, coc_topic])
    paths = [bagio.deserialize(r.raw, r.typename) for r in recs[path_topic]]
    cocs = [bagio.deserialize(r.raw, r.typename) for r in recs[coc_topic]]
    path_t0 = [bagio.stamp_ns(p.header.stamp) for p in paths]
    coc_t0 = [bagio.stamp_ns(c.header.stamp) for c in cocs]
    assert paths and cocs
    assert set(path_t0) <= plannable, "every plan is stamped with an anchor camera stamp t0 (after 1.5 s)"
    assert set(coc_t0) == set(path_t0)
    assert len(set(path_t0)) >= len(plannable) // 2, f"planned {len(set(path_t0))} of {len(plannable)} ticks"
    for p in paths:
        t0 = bagio.stamp_ns(p.header.stamp)
        assert len(p.poses) == 64
        assert bagio.stamp_ns(p.poses[0].header.stamp) == t0 + 100_000_000
        assert bagio.stamp_ns(p.poses[-1].header.stamp) == t0 + 6_400_000_000
    summary = json.loads((out / "report" / "metrics.json").read_text())
    assert summary["ticks"]["scored"] == len(set(path_t0))
    assert summary["model"]["name"].startswith("test-policy")

    # One tick: the offline evaluation (same bag, same model, no DDS) plans exactly what the node published.
    from alpamayo_ros.core.model_spec import ModelSpec
    from alpamayo_ros.runtime.registry import load_model
    from alpamayo_ros.tools.evaluate import evaluate_bag

    offline = {
        t.t0_ns: t for t in evaluate_bag(scenario, load_model(ModelSpec(backend="test_policy")), progress=False).ticks
    }
    texts = {bagio.stamp_ns(c.header.stamp): str(c.reasoning_text) for c in cocs}
    for p in paths:
        t0 = bagio.stamp_ns(p.header.stamp)
        node_xy = np.array([[q.pose.position.x, q.pose.position.y] for q in p.poses])
        assert np.array_equal(offline[t0].pred_xy[0], node_xy), f"plans differ at t0 {t0}"
        assert offline[t0].reasoning == texts[t0]
