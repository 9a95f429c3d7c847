"""Output builders: Path stamps/frames/orientation, odom composition, ChainOfCausation, markers, overlay image."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from alpamayo_ros.core.builders import (
    build_chain_of_causation,
    build_image,
    build_markers,
    build_odom_path,
    build_path,
    ns_from_stamp,
    stamp_from_ns,
)
from alpamayo_ros.core.decisions import check_consistency
from alpamayo_ros.core.ego_history import OdomPose
from alpamayo_ros.core.output_params import OutputParams
from alpamayo_ros.core.transforms import matrix_to_quat, quat_to_matrix, yaw_matrix, yaw_of
from alpamayo_ros.core.types import ModelInfo, Prediction, StageTimings
from alpamayo_ros.msg import CausalStep, ChainOfCausation

T0 = 1_234 * 1_000_000_000 + 987_654_321


def arc(n: int = 64, speed: float = 8.0, yaw_rate: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(n) + 1) * 0.1
    yaw = yaw_rate * t
    xyz = np.stack([speed / yaw_rate * np.sin(yaw), speed / yaw_rate * (1 - np.cos(yaw)), np.zeros(n)], axis=1)
    return xyz, np.stack([yaw_matrix(float(y)) for y in yaw])


def test_stamp_round_trip() -> None:
    assert ns_from_stamp(stamp_from_ns(T0)) == T0
    assert stamp_from_ns(T0).nanosec == 987_654_321


def test_path_stamps_frames_and_orientation() -> None:
    xyz, rot = arc()
    path = build_path(xyz, rot, T0, "base_link")
    assert ns_from_stamp(path.header.stamp) == T0 and path.header.frame_id == "base_link"
    assert len(path.poses) == 64
    for i, pose in enumerate(path.poses):
        assert ns_from_stamp(pose.header.stamp) == T0 + (i + 1) * 100_000_000
        assert pose.header.frame_id == "base_link"
    last = path.poses[-1].pose
    assert (last.position.x, last.position.y) == pytest.approx((xyz[-1, 0], xyz[-1, 1]))
    q = (last.orientation.x, last.orientation.y, last.orientation.z, last.orientation.w)
    assert yaw_of(quat_to_matrix(q)) == pytest.approx(0.2 * 6.4)


def test_odom_path_is_composed_with_the_t0_pose() -> None:
    xyz, rot = arc()
    pose_rot = yaw_matrix(math.pi / 2)
    t0_pose = OdomPose("odom", np.array([100.0, 50.0, 2.0]), pose_rot, matrix_to_quat(pose_rot))
    path = build_odom_path(xyz, rot, t0_pose, T0)
    assert path.header.frame_id == "odom"
    first = path.poses[0].pose.position
    # ego faces +y in odom: its forward x maps to odom +y
    assert (first.x, first.y, first.z) == pytest.approx((100.0 - xyz[0, 1], 50.0 + xyz[0, 0], 2.0))
    assert build_odom_path(xyz, rot, t0_pose, T0, "map").header.frame_id == "map"


def prediction(text: str, xyz: np.ndarray, rot: np.ndarray, samples: int = 2) -> Prediction:
    return Prediction(
        xyz=np.stack([xyz] * samples),
        rotation=np.stack([rot] * samples),
        reasoning=(text,) * samples,
        num_generated_tokens=(17,) * samples,
        truncated=(False, True)[:samples],
        timings=StageTimings(preprocess_ms=1.0, reasoning_ms=100.0, action_ms=20.0, total_ms=125.0),
    )


def test_chain_of_causation_fields() -> None:
    xyz, rot = arc(speed=8.0, yaw_rate=0.3)
    text = "The road curves to the left, so follow the curve and keep speed."
    pred = prediction(text, xyz, rot)
    report = check_consistency(text, xyz[0:64], 8.0)
    info = ModelInfo("alpamayo-tiny", "abc123", ("a",), (0.0,), None, untrained=True)
    msg = build_chain_of_causation(T0, frame_id="base_link", prediction=pred, sample_index=1, report=report, info=info)
    assert isinstance(msg, ChainOfCausation)
    assert ns_from_stamp(msg.header.stamp) == T0 and msg.header.frame_id == "base_link"
    assert msg.reasoning_text == text
    assert [s.role for s in msg.steps] == [CausalStep.ROLE_EVIDENCE, CausalStep.ROLE_DECISION]
    assert msg.reasoning_decision.lateral == msg.reasoning_decision.LATERAL_TURN_LEFT
    assert msg.trajectory_decision.lateral == msg.trajectory_decision.LATERAL_TURN_LEFT
    assert msg.agreement == ChainOfCausation.AGREEMENT_AGREE
    assert msg.model_name == "alpamayo-tiny (untrained)" and msg.model_version == "abc123"
    assert (msg.sample_index, msg.num_samples, msg.truncated, msg.num_generated_tokens) == (1, 2, True, 17)
    assert msg.latency.total_ms == pytest.approx(125.0) and msg.latency.reasoning_ms == pytest.approx(100.0)
    assert math.isnan(msg.reasoning_uncertainty)  # no token probabilities reported
    sure_and_unsure = (np.zeros(17), np.log(np.full(17, 0.5)))
    pred = dataclasses.replace(pred, token_logprobs=sure_and_unsure)
    for index, expected in ((0, 0.0), (1, 0.5)):
        msg = build_chain_of_causation(T0, frame_id="b", prediction=pred, sample_index=index, report=report, info=info)
        assert msg.reasoning_uncertainty == pytest.approx(expected)


def test_markers_are_stamped_at_t0_not_frame_locked_raised_and_coloured() -> None:
    xyz, _ = arc()
    long_text = "word " * 60
    ma = build_markers(xyz, T0, "base_link", text=long_text, agreement=2)
    line, foot, label = ma.markers
    assert all(not m.frame_locked and m.header.frame_id == "base_link" for m in ma.markers)
    assert all(ns_from_stamp(m.header.stamp) == T0 for m in ma.markers)
    assert line.type == line.LINE_STRIP and len(line.points) == 65 and line.pose.position.z == pytest.approx(0.2)
    assert (line.color.r, line.color.g) == pytest.approx((1.0, 0.15))  # red: disagreement
    assert len(foot.points) == 5 and foot.points[0].x == pytest.approx(-1.0)
    assert label.type == label.TEXT_VIEW_FACING
    assert max(len(row) for row in label.text.split("\n")) <= 48 and label.text.count("\n") >= 5
    green = build_markers(xyz, T0, "base_link", text="ok", agreement=1).markers[0].color
    assert green.g > green.r
    assert (line.lifetime.sec, line.lifetime.nanosec) == (3, 0)  # outlives a slow plan, vanishes when planning stops
    styled = build_markers(xyz, T0, "base_link", text="ok", agreement=1, style=OutputParams(marker_lifetime_sec=2.5))
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (2, 500_000_000) for m in styled.markers)


def test_image_message() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 255
    msg = build_image(rgb[:, ::-1], T0, "camera")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 6, 18, "rgb8")
    assert bytes(msg.data[:3]) == b"\xff\x00\x00"
