"""The closed-loop ego plant: exact kinematics, first-order lag, and every actuator limit binding when it should."""

from __future__ import annotations

import math

import pytest

from alpamayo_ros.sim.vehicle import Vehicle, VehicleParams, VehicleState


def test_straight_line_at_constant_speed_is_exact() -> None:
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 10.0))
    for _ in range(10):
        car.step(0.0, 0.0, 0.1)
    assert car.state.x == pytest.approx(10.0, abs=1e-9)
    assert car.state.y == 0.0
    assert car.state.v_mps == 10.0


def test_constant_curvature_drives_a_circle() -> None:
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 5.0, curvature_per_m=0.1))
    for _ in range(20):
        states = car.step(0.0, 0.1, 0.1)
    st = car.state
    assert math.hypot(st.x, st.y - 10.0) == pytest.approx(10.0, abs=1e-6)  # centre (0, 10), radius 10 m
    assert st.yaw == pytest.approx(1.0, abs=1e-9)  # 10 m of arc / 10 m radius
    assert len(states) == VehicleParams().substeps


def test_acceleration_follows_a_first_order_lag() -> None:
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 10.0))
    car.step(1.0, 0.0, 0.1)  # one lag constant: 1 - 1/e of the step
    assert car.state.accel_mps2 == pytest.approx(1.0 - math.exp(-1.0), rel=1e-6)


def test_jerk_limit_caps_a_braking_step() -> None:
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 10.0))
    car.step(-8.0, 0.0, 0.1)  # the lag alone would reach -5.1 m/s^2; 15 m/s^3 allows -1.5
    assert car.state.accel_mps2 == pytest.approx(-VehicleParams().jerk_max_mps3 * 0.1)


def test_acceleration_and_curvature_saturate() -> None:
    params = VehicleParams()
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 5.0))
    for _ in range(30):
        car.step(50.0, 5.0, 0.1)
    assert car.state.accel_mps2 == pytest.approx(params.accel_max_mps2, rel=1e-3)
    assert car.state.curvature_per_m == pytest.approx(params.curvature_max_per_m, rel=1e-3)


def test_curvature_rate_limit() -> None:
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 5.0))
    car.step(0.0, 0.19, 0.1)  # the lag would move 0.12 1/m; 0.3 1/(m s) allows 0.03
    assert car.state.curvature_per_m == pytest.approx(0.03)


def test_braking_stops_and_never_reverses() -> None:
    car = Vehicle(VehicleState(0.0, 0.0, 0.0, 2.0))
    for _ in range(30):
        car.step(-8.0, 0.0, 0.1)
    x_stopped = car.state.x
    for _ in range(10):
        car.step(-8.0, 0.0, 0.1)
    assert car.state.v_mps == 0.0
    assert car.state.x == x_stopped
    assert 0.0 < x_stopped < 2.0


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="invalid vehicle parameters"):
        VehicleParams(accel_lag_s=0.0)
