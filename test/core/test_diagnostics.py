"""Diagnostics bookkeeping and status derivation: stream levels from ages and errors, planning/model messages,
stream counters, log throttling by key."""

from __future__ import annotations

import math

import pytest

from alpamayo_ros.core.diagnostics import (
    Level,
    Lifecycle,
    ModelState,
    PlanningStats,
    StreamStats,
    Throttle,
    camera_status,
    model_status,
    odometry_status,
    planning_status,
    stream_level,
    stream_values,
)
from alpamayo_ros.core.types import ModelInfo

SEC = 1_000_000_000
NOW = 100 * SEC


def stream(*stamps_ns: int) -> StreamStats:
    stats = StreamStats()
    for stamp in stamps_ns:
        stats.received += 1
        stats.accepted(stamp)
    return stats


def test_levels_match_diagnostic_msgs() -> None:
    diagnostic_msgs = pytest.importorskip("diagnostic_msgs.msg")
    status = diagnostic_msgs.DiagnosticStatus
    assert [bytes([lvl]) for lvl in Level] == [status.OK, status.WARN, status.ERROR, status.STALE]


def test_rate_from_message_stamps() -> None:
    assert stream().rate_hz() == 0.0
    assert stream(NOW).rate_hz() == 0.0
    assert stream(*(NOW + i * SEC // 10 for i in range(11))).rate_hz() == pytest.approx(10.0)
    assert stream(NOW, NOW).rate_hz() == 0.0  # zero span: no rate, not a division by zero


def test_rate_window_keeps_the_last_30_stamps() -> None:
    stats = stream(*(i * SEC for i in range(10)), *(10 * SEC + i * SEC // 10 for i in range(1, 31)))
    assert len(stats.stamps) == 30
    assert stats.rate_hz() == pytest.approx(10.0)


def test_newest_stamp_only_grows_unless_time_jumped_back() -> None:
    stats = stream(NOW, NOW - SEC)  # out of order: the newest stays
    assert stats.last_stamp_ns == NOW
    stats.accepted(NOW - 5 * SEC, time_jumped_back=True)
    assert stats.last_stamp_ns == NOW - 5 * SEC


def test_stream_level_no_messages_stale_error_ok() -> None:
    assert stream_level(StreamStats(), NOW, 0.5) == (Level.WARN, "no messages")
    assert stream_level(stream(NOW - 2 * SEC), NOW, 0.5) == (Level.WARN, "stale: last message 2.00 s old")
    fresh = stream(*(NOW - SEC // 10 * i for i in (3, 2, 1)))
    assert stream_level(fresh, NOW, 0.5) == (Level.OK, "10.0 Hz")
    fresh.error(NOW - SEC, "rejected: non-finite twist")
    assert fresh.rejected == 1
    assert stream_level(fresh, NOW, 0.5) == (Level.WARN, "rejected: non-finite twist")
    # an error older than 2 s no longer holds the stream at WARN
    assert stream_level(fresh, NOW + 3 * SEC // 2, 5.0)[0] is Level.OK
    old = stream(NOW)
    old.error(NOW - 2 * SEC, "old")
    assert stream_level(old, NOW, 0.5)[0] is Level.OK


def test_an_error_whose_stamp_is_the_problem_is_timed_on_the_streams_own_clock() -> None:
    """Zero, 5 s behind, 1000 s ahead: each held the stream at WARN never (the first two) or for 1000 s."""
    for bad_stamp in (0, NOW - 5 * SEC, NOW + 1000 * SEC):
        stats = stream(NOW - SEC // 10, NOW)
        stats.error(bad_stamp, "bad stamp")
        assert stream_level(stats, NOW + SEC // 10, 0.5) == (Level.WARN, "bad stamp"), bad_stamp
        assert stream_level(stats, NOW + 3 * SEC, 5.0)[0] is Level.OK, bad_stamp


def test_stale_takes_precedence_over_a_recent_error() -> None:
    stats = stream(NOW - 3 * SEC)
    stats.error(NOW, "decode failed")
    assert stream_level(stats, NOW, 0.5) == (Level.WARN, "stale: last message 3.00 s old")


def test_stream_values() -> None:
    assert stream_values(StreamStats(), NOW)["age_ms"] == ""
    stats = stream(NOW - 250_000_000)
    stats.duplicates, stats.out_of_order = 2, 1
    assert stream_values(stats, NOW) == {
        "rate_hz": "0.0",
        "delivery_pct": "",
        "age_ms": "250",
        "received": 1,
        "rejected": 0,
        "duplicates": 2,
        "out_of_order": 1,
        "last_error": "",
    }


def test_delivery_counts_the_messages_that_never_arrived() -> None:
    stats = StreamStats()
    assert stats.delivery() is None
    for k in range(20):  # a 10 Hz stream missing every third frame
        if k % 3 != 2:
            stats.accepted(NOW + k * SEC // 10)
    delivery = stats.delivery()
    assert delivery is not None and abs(delivery - 14 / 20) < 1e-9
    assert stream_values(stats, NOW + 2 * SEC)["delivery_pct"] == "70"


def test_camera_and_odometry_status_values() -> None:
    stats = stream(NOW - SEC // 10)
    stats.size_wh = (1920, 1080)
    cam = camera_status(stats, NOW, 0.5, topic="~/input/front/image", message_type="raw", used_by_model=True)
    assert cam.level is Level.OK
    assert list(cam.values)[-4:] == ["topic", "message_type", "used_by_model", "size"]
    assert (cam.values["topic"], cam.values["used_by_model"], cam.values["size"]) == (
        "~/input/front/image",
        True,
        "1920x1080",
    )
    assert (
        "size" not in camera_status(StreamStats(), NOW, 0.5, topic="t", message_type="raw", used_by_model=False).values
    )
    odom = odometry_status(StreamStats(), NOW, 0.5, frame_id="odom")
    assert (odom.level, odom.message, list(odom.values)[-1], odom.values["frame_id"]) == (
        Level.WARN,
        "no messages",
        "frame_id",
        "odom",
    )


def test_model_status_by_state() -> None:
    info = ModelInfo("test-policy", "0.1", ("front_wide",), (-0.1, 0.0), None, untrained=True)
    kw = {"backend": "test_policy", "model_path": "", "info": None}
    assert model_status(ModelState.UNCONFIGURED, Lifecycle.UNCONFIGURED, "", **kw)[:2] == (Level.OK, "unconfigured")
    assert model_status(ModelState.LOADING, Lifecycle.UNCONFIGURED, "", **kw)[:2] == (Level.WARN, "loading")
    failed = model_status(ModelState.ERROR, Lifecycle.UNCONFIGURED, "model load failed: boom", **kw)
    assert failed[:2] == (Level.ERROR, "error: model load failed: boom")
    ready = model_status(ModelState.READY, Lifecycle.ACTIVE, "", backend="test_policy", model_path="", info=info)
    assert ready[:2] == (Level.OK, "ready")
    assert ready.values == {
        "state": "ready",
        "lifecycle": "active",
        "backend": "test_policy",
        "model_path": "",
        "name": "test-policy",
        "version": "0.1",
        "untrained": True,
        "cameras": "front_wide",
    }


def test_planning_status_messages() -> None:
    plan = PlanningStats()
    assert planning_status(plan, Lifecycle.INACTIVE)[:2] == (Level.OK, "not active (inactive)")
    assert planning_status(plan, Lifecycle.ACTIVE)[:2] == (Level.WARN, "waiting for the first complete sample")
    plan.last_failure = "model raised RuntimeError: boom\nTraceback ..."
    status = planning_status(plan, Lifecycle.ACTIVE)
    assert status[:2] == (Level.WARN, "model raised RuntimeError: boom")  # first line only
    assert status.values["last_failure"] == "model raised RuntimeError: boom"
    plan.published_plan("AGREE: ok", 12.0, 0.02, uncertain=False)
    plan.last_t0_ns, plan.last_stage_ms = 1_500_000_000, {"inference_ms": 12.345}
    status = planning_status(plan, Lifecycle.ACTIVE)
    assert status[:2] == (Level.OK, "planning")
    assert (status.values["plans_published"], status.values["last_failure"], status.values["agreement"]) == (
        1,
        "",
        "AGREE: ok",
    )
    assert (status.values["last_t0_sec"], status.values["inference_ms"]) == ("1.500", "12.3")
    assert next(iter(status.values)) == "plans_published"
    assert (status.values["reasoning_uncertainty"], status.values["uncertain_plans"]) == ("0.020", 0)
    assert status.values["trajectory_spread_m"] == "nan"  # one sample per plan
    plan.published_plan("AGREE: ok", 13.0, 0.02, uncertain=False, spread_m=1.234)
    assert planning_status(plan, Lifecycle.ACTIVE).values["trajectory_spread_m"] == "1.23"


def test_an_uncertain_plan_warns_until_a_sure_one_follows() -> None:
    plan = PlanningStats()
    plan.published_plan("AGREE: ok", 1.0, 0.4, uncertain=True)
    status = planning_status(plan, Lifecycle.ACTIVE, uncertainty_warn=0.1)
    assert status[:2] == (Level.WARN, "uncertain reasoning: 0.40 > 0.1") and status.values["uncertain_plans"] == 1
    assert planning_status(plan, Lifecycle.ACTIVE, uncertainty_warn=0.5)[:2] == (Level.OK, "planning")
    plan.published_plan("AGREE: ok", 2.0, 0.01, uncertain=False)
    assert planning_status(plan, Lifecycle.ACTIVE, uncertainty_warn=0.1)[:2] == (Level.OK, "planning")
    plan.published_plan("AGREE: ok", 3.0, math.nan, uncertain=False)  # a backend without token probabilities
    assert planning_status(plan, Lifecycle.ACTIVE, uncertainty_warn=0.1)[:2] == (Level.OK, "planning")


def test_planning_failures_counted_once_per_anchor_frame() -> None:
    plan = PlanningStats()
    assert plan.first_failure(5 * SEC)
    assert not plan.first_failure(5 * SEC)
    assert plan.first_failure(6 * SEC)
    assert plan.first_failure(None)
    assert not plan.first_failure(None)
    # the same frame failing in another way is a new failure to report
    assert plan.first_failure(7 * SEC, "sync") and plan.first_failure(7 * SEC, "ego")
    assert not plan.first_failure(7 * SEC, "ego")


def test_plan_failures_split_model_from_input() -> None:
    plan = PlanningStats()
    plan.plan_failed(model_failure=True)
    plan.plan_failed(model_failure=False)
    plan.plan_failed(model_failure=False)
    assert (plan.model_failures, plan.sync_failures) == (1, 2)


def test_throttle_per_key() -> None:
    now = [0.0]
    throttle = Throttle(clock=lambda: now[0])
    assert throttle.ready("a", 1.0)
    assert not throttle.ready("a", 1.0)
    assert throttle.ready("b", 1.0)  # keys are independent
    now[0] = 0.999
    assert not throttle.ready("a", 1.0)
    now[0] = 1.0
    assert throttle.ready("a", 1.0)
    assert throttle.ready("a", 0.0)  # a zero period never throttles
    assert Throttle().ready("x", 1e9)  # the first line of a key always passes
