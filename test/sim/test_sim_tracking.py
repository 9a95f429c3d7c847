"""The LQR plan tracker on the plant: straight, stop, curve, lateral offset, time indexing and stale plans."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from alpamayo_ros.sim.tracking import STALE_AFTER_S, STALE_BRAKE_MPS2, LqrTracker, Plan, PlanError
from alpamayo_ros.sim.vehicle import Vehicle, VehicleState

TIMES = np.arange(1, 65) * 0.1
Reference = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]  # world x, y, yaw at times


def _plan(ref: Reference, t: float, st: VehicleState) -> Plan:
    """The reference's next 6.4 s in the ego frame at t: what a consistent planner would answer."""
    x, y, yaw = ref(t + TIMES)
    c, s = math.cos(st.yaw), math.sin(st.yaw)
    dx, dy = x - st.x, y - st.y
    return Plan(t, (st.x, st.y, st.yaw), np.stack([c * dx + s * dy, -s * dx + c * dy, yaw - st.yaw], axis=1))


def _drive(
    ref: Reference, start: VehicleState, seconds: float, replan_until: float = math.inf
) -> tuple[Vehicle, list[tuple[float, VehicleState, bool]]]:
    car, tracker, plan = Vehicle(start), LqrTracker(), None
    log = []
    for k in range(round(seconds / 0.1)):
        t = k * 0.1
        if t < replan_until:
            plan = _plan(ref, t, car.state)
        cmd = tracker.command(car.state, t, plan)
        log.append((t, car.state, cmd.stale))
        car.step(cmd.accel_mps2, cmd.curvature_per_m, 0.1)
    return car, log


def _line(speed: float) -> Reference:
    return lambda t: (speed * t, np.zeros_like(t), np.zeros_like(t))


def test_follows_a_straight_constant_speed_plan() -> None:
    car, log = _drive(_line(10.0), VehicleState(0.0, 0.0, 0.0, 8.0), 10.0)
    assert car.state.v_mps == pytest.approx(10.0, abs=0.05)
    assert car.state.x == pytest.approx(100.0, abs=0.5)  # time-indexed: it catches up with where the plan is
    assert max(abs(st.y) for _, st, _ in log) < 1e-6


def test_stops_at_the_stop_point() -> None:
    # 10 m/s braking at 2 m/s^2 from x = 0: standstill at x = 25 m after 5 s.
    def ref(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tc = np.minimum(t, 5.0)
        return 10.0 * tc - tc * tc, np.zeros_like(t), np.zeros_like(t)

    car, _ = _drive(ref, VehicleState(0.0, 0.0, 0.0, 10.0), 9.0)
    assert car.state.v_mps < 0.05
    assert car.state.x == pytest.approx(25.0, abs=0.3)


def test_follows_a_curve_with_bounded_lateral_error() -> None:
    radius, speed = 40.0, 10.0

    def ref(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ang = speed * t / radius
        return radius * np.sin(ang), radius - radius * np.cos(ang), ang

    _, log = _drive(ref, VehicleState(0.0, 0.0, 0.0, speed), 10.0)
    radial = [abs(math.hypot(st.x, st.y - radius) - radius) for _, st, _ in log]
    assert max(radial) < 0.15


@pytest.mark.parametrize("speed", [3.0, 10.0])
def test_corrects_a_lateral_offset_without_losing_speed(speed: float) -> None:
    car, log = _drive(_line(speed), VehicleState(0.0, 0.5, 0.0, speed), 10.0)
    assert abs(car.state.y) < 0.05
    assert min(st.v_mps for _, st, _ in log) > speed - 0.1


def test_an_old_plan_is_followed_by_time() -> None:
    # One plan made at t = 0, followed for 0.9 s without replanning: where the ego is follows the plan's clock.
    car, log = _drive(_line(10.0), VehicleState(0.0, 0.0, 0.0, 10.0), 1.0, replan_until=0.05)
    assert not any(stale for _, _, stale in log)
    assert car.state.x == pytest.approx(10.0, abs=0.05)


def test_a_stale_plan_brakes() -> None:
    _, log = _drive(_line(10.0), VehicleState(0.0, 0.0, 0.0, 10.0), 4.0, replan_until=0.05)
    stale = [(t, st) for t, st, flag in log if flag]
    assert stale, "a plan older than 1 s must be flagged"
    assert stale[0][0] == pytest.approx(STALE_AFTER_S + 0.1)
    assert log[-1][1].v_mps < 10.0 + STALE_BRAKE_MPS2 * 2.0  # braking for ~2.9 s at up to -3 m/s^2
    assert LqrTracker().command(VehicleState(0.0, 0.0, 0.0, 5.0), 0.0, None).stale  # no plan at all


def test_plan_validation() -> None:
    with pytest.raises(PlanError, match="shape"):
        Plan(0.0, (0.0, 0.0, 0.0), np.zeros((10, 3)))
    bad = np.zeros((64, 3))
    bad[5, 1] = np.nan
    with pytest.raises(PlanError, match="non-finite"):
        Plan(0.0, (0.0, 0.0, 0.0), bad)


def test_xy_only_plan_gets_headings_from_the_path() -> None:
    poses = np.stack([TIMES * 10.0, TIMES * 10.0], axis=1)  # 45 degrees to the left
    _, world = Plan(0.0, (1.0, 2.0, 0.5), poses).world()
    assert world[0, 2] == pytest.approx(0.5)  # the origin keeps the ego's heading
    assert world[10:, 2] == pytest.approx(0.5 + math.pi / 4)
