"""Ego history interpolated by timestamp from odometry of any rate, with jitter and gaps, in the t0 frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpamayo_ros.core.ego_history import (
    EgoHistoryFailure,
    EgoHistoryResult,
    EgoParams,
    OdometryBuffer,
    OdometryRejectedError,
    build_ego_history,
    make_odom_sample,
)
from alpamayo_ros.core.transforms import yaw_of
from alpamayo_ros.core.types import BufferOutcome

SEC = 1_000_000_000
T0 = 100 * SEC


def circle_pose(t_sec: float, speed: float = 10.0, yaw_rate: float = 0.2, yaw0: float = 0.3) -> tuple:
    """Ego on a circle in the odom frame: constant speed and yaw rate (exact ground truth)."""
    yaw = yaw0 + yaw_rate * t_sec
    radius = speed / yaw_rate
    x = radius * (math.sin(yaw) - math.sin(yaw0)) + 50.0
    y = -radius * (math.cos(yaw) - math.cos(yaw0)) - 20.0
    return (x, y, 1.5), (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)), yaw


def fill(buf: OdometryBuffer, rate_hz: float, jitter_sec: float = 0.0, seed: int = 0,
         gap: tuple[float, float] | None = None) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    t = T0 / SEC - 2.5
    while t < T0 / SEC + 0.05:
        stamp = t + (rng.uniform(-jitter_sec, jitter_sec) if jitter_sec else 0.0)
        if gap is None or not gap[0] <= stamp < gap[1]:
            p, q, _ = circle_pose(stamp - 90.0)
            buf.add(make_odom_sample(round(stamp * SEC), p, q), "odom")
        t += 1.0 / rate_hz


def expected_local(offset_sec: float) -> tuple[np.ndarray, float]:
    p0, _, yaw0 = circle_pose(T0 / SEC - 90.0)
    p, _, yaw = circle_pose(T0 / SEC - 90.0 + offset_sec)
    d = np.subtract(p, p0)
    c, s = math.cos(yaw0), math.sin(yaw0)
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]]), yaw - yaw0


@pytest.mark.parametrize(
    ("rate_hz", "jitter_sec"), [(50.0, 0.0), (50.0, 0.004), (17.0, 0.0), (17.0, 0.01), (100.0, 0.002)]
)
def test_history_matches_ground_truth(rate_hz: float, jitter_sec: float) -> None:
    buf = OdometryBuffer(buffer_sec=3.0)
    fill(buf, rate_hz, jitter_sec)
    result = build_ego_history(buf, T0)
    assert isinstance(result, EgoHistoryResult), result
    hist = result.history
    assert hist.xyz.shape == (16, 3) and hist.rotation.shape == (16, 3, 3)
    np.testing.assert_allclose(hist.offsets_sec, np.linspace(-1.5, 0.0, 16), atol=1e-9)
    np.testing.assert_allclose(hist.xyz[-1], 0.0)
    np.testing.assert_allclose(hist.rotation[-1], np.eye(3))
    # ego was behind (negative x) and, turning left, slightly to the left of its current heading's reverse
    assert hist.xyz[0, 0] == pytest.approx(-15.0, abs=0.3)
    # linear interpolation of a 10 m/s, 0.2 rad/s arc: chord error < 1 cm at 17 Hz
    for i, off in enumerate(hist.offsets_sec):
        want_xyz, want_yaw = expected_local(float(off))
        np.testing.assert_allclose(hist.xyz[i], want_xyz, atol=0.01 + 10 * jitter_sec)
        assert yaw_of(hist.rotation[i]) == pytest.approx(want_yaw, abs=1e-3 + 0.2 * jitter_sec)
    assert result.speed_mps == pytest.approx(10.0, rel=0.02 + 10 * jitter_sec)
    assert result.t0_pose.frame_id == "odom"
    assert yaw_of(result.t0_pose.rotation) == pytest.approx(expected_local(0.0)[1] + circle_pose(10.0)[2], abs=1e-3)


def test_short_gap_is_bridged_long_gap_refused() -> None:
    buf = OdometryBuffer()
    fill(buf, 50.0, gap=(99.0, 99.2))  # 0.2 s (+ one period) gap
    assert isinstance(build_ego_history(buf, T0, EgoParams(max_gap_sec=0.25)), EgoHistoryResult)
    buf = OdometryBuffer()
    fill(buf, 50.0, gap=(99.0, 99.5))
    result = build_ego_history(buf, T0, EgoParams(max_gap_sec=0.25))
    assert isinstance(result, EgoHistoryFailure)
    assert "odometry gap of 520 ms (max 250 ms)" in result.reason


def test_odometry_that_stopped_or_started_late() -> None:
    buf = OdometryBuffer()
    fill(buf, 50.0, gap=(99.7, 101.0))
    result = build_ego_history(buf, T0)
    assert isinstance(result, EgoHistoryFailure) and "t0-0.1 s: newest odometry is 200 ms older" in result.reason
    buf = OdometryBuffer()
    fill(buf, 50.0, gap=(97.0, 99.0))
    result = build_ego_history(buf, T0)
    assert isinstance(result, EgoHistoryFailure) and "t0-1.5 s: odometry starts" in result.reason
    assert isinstance(build_ego_history(OdometryBuffer(), T0), EgoHistoryFailure)


def test_t0_slightly_after_newest_odometry_is_extrapolated() -> None:
    buf = OdometryBuffer()
    fill(buf, 17.0, gap=(99.95, 101.0))
    result = build_ego_history(buf, T0, EgoParams(max_extrapolation_sec=0.1))
    assert isinstance(result, EgoHistoryResult)
    want, _ = expected_local(-1.5)
    np.testing.assert_allclose(result.history.xyz[0], want, atol=0.02)


@pytest.mark.parametrize(
    ("position", "quat", "match"),
    [
        ((float("nan"), 0, 0), (0, 0, 0, 1), "non-finite position"),
        ((0, float("inf"), 0), (0, 0, 0, 1), "non-finite position"),
        ((0, 0, 0), (0, 0, 0, 0), "zero norm"),
        ((0, 0, 0), (0, float("nan"), 0, 1), "not finite"),
    ],
)
def test_bad_odometry_rejected(position: tuple, quat: tuple, match: str) -> None:
    with pytest.raises(OdometryRejectedError, match=match):
        make_odom_sample(1, position, quat)


def test_buffer_order_duplicates_and_jumps() -> None:
    buf = OdometryBuffer(buffer_sec=3.0, backwards_jump_sec=0.5)
    s = lambda t: make_odom_sample(t, (t / SEC, 0, 0), (0, 0, 0, 1))  # noqa: E731
    assert buf.add(s(10 * SEC)) is BufferOutcome.ADDED
    assert buf.add(s(10 * SEC)) is BufferOutcome.DUPLICATE
    assert buf.add(s(11 * SEC)) is BufferOutcome.ADDED
    assert buf.add(s(10 * SEC + SEC // 2 + 1)) is BufferOutcome.OUT_OF_ORDER
    assert buf.add(s(5 * SEC)) is BufferOutcome.TIME_JUMPED_BACK
    assert len(buf) == 1
    for k in range(200):
        buf.add(s(5 * SEC + k * SEC // 20))
    assert len(buf) <= 62  # 3 s at 20 Hz, + one sample before the window


@pytest.mark.parametrize("stamp_ns", [0, -SEC])
def test_zero_or_negative_stamp_rejected(stamp_ns: int) -> None:
    """An unset header stamp is not 'time jumped back': rejected with its value, the buffer is untouched."""
    with pytest.raises(OdometryRejectedError, match=f"stamp {stamp_ns} ns"):
        make_odom_sample(stamp_ns, (0.0, 0.0, 0.0), (0, 0, 0, 1))
    buf = OdometryBuffer(buffer_sec=3.0, backwards_jump_sec=0.5)
    for k in range(3):
        assert (
            buf.add(make_odom_sample(10 * SEC + k * SEC // 10, (k, 0, 0), (0, 0, 0, 1)), "odom") is BufferOutcome.ADDED
        )
    # a sample built without make_odom_sample's check is refused by the buffer itself
    bad = make_odom_sample(1, (0.0, 0.0, 0.0), (0, 0, 0, 1))
    bad = type(bad)(stamp_ns, bad.position, bad.quat_xyzw)
    assert buf.add(bad, "odom") is BufferOutcome.BAD_STAMP
    assert len(buf) == 3 and buf.newest_stamp_ns() == 10 * SEC + 2 * SEC // 10


def test_frame_change_flushes_the_buffer() -> None:
    """Poses from two odometry frames are never interpolated into one history."""
    buf = OdometryBuffer(buffer_sec=3.0)
    s = lambda t, x: make_odom_sample(t, (x, 0, 0), (0, 0, 0, 1))  # noqa: E731
    for k in range(20):
        assert buf.add(s(T0 - 2 * SEC + k * SEC // 10, float(k)), "odom") is BufferOutcome.ADDED
    assert buf.frame_id == "odom"
    assert buf.add(s(T0 - SEC // 20, 19.5)) is BufferOutcome.ADDED  # no frame_id: the buffer's frame is kept
    assert buf.add(s(T0, 500.0), "map") is BufferOutcome.FRAME_CHANGED
    assert buf.frame_id == "map" and len(buf) == 1
    assert isinstance(build_ego_history(buf, T0), EgoHistoryFailure)  # 1.5 s of history in "map" needed again
    assert buf.add(s(T0 + SEC // 10, 501.0), "map") is BufferOutcome.ADDED
    assert len(buf) == 2
