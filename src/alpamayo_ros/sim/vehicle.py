"""The closed-loop ego: a kinematic bicycle with first-order actuator lag and actuator limits.

Reference point: the rear-axle centre (the ego frame's origin, as in core.types), world ("odom") frame, x east,
y north, yaw from +x counter-clockwise. A kinematic bicycle driven at its rear axle moves along its heading with
yaw rate v * curvature, so curvature (1/m, + left) is the steering input; steering angle = atan(wheelbase * curvature).

The numbers and where they come from (a mid-size sedan, the car AlpaSim's controller models):
- wheelbase 2.85 m: Ford Fusion (2013-2020) specification, 112.2 in; AlpaSim's vehicle model uses Fusion parameters.
- actuator lag 0.1 s on acceleration and on curvature: AlpaSim's controller plant ("0.1 s actuator lags").
- acceleration -8.0 .. +3.0 m/s^2: about 0.8 g of emergency braking on dry asphalt; +3 m/s^2 is roughly full
  throttle of a mid-size sedan at urban speed (0-100 km/h in ~8 s averages 3.5 m/s^2, less above 50 km/h).
- jerk 15 m/s^3: an emergency-braking ramp (AEB systems ramp to full braking in ~0.5 s); comfort is judged by the
  metrics (nuPlan's 8.37 m/s^3), not enforced by the plant.
- curvature 0.19 1/m (radius 5.3 m, steering angle ~28 deg): the Fusion's ~11.6 m turning circle, kerb to kerb.
- curvature rate 0.3 1/(m s): ~500 deg/s at the steering wheel (ratio ~14:1) at full lock, a fast human steer.
Integration: the 0.1 s tick is split into substeps (default 10 x 10 ms); within a substep the actuators move first
(lag, then rate limits), then the pose advances along the arc of constant curvature exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VehicleParams:
    """Plant parameters (see the module docstring for the source of each number)."""

    wheelbase_m: float = 2.85
    accel_lag_s: float = 0.1
    curvature_lag_s: float = 0.1
    accel_min_mps2: float = -8.0
    accel_max_mps2: float = 3.0
    jerk_max_mps3: float = 15.0
    curvature_max_per_m: float = 0.19
    curvature_rate_max_per_ms: float = 0.3
    substeps: int = 10

    def __post_init__(self) -> None:
        if self.wheelbase_m <= 0.0 or self.accel_lag_s <= 0.0 or self.curvature_lag_s <= 0.0 or self.substeps < 1:
            raise ValueError(f"invalid vehicle parameters: {self}")


@dataclass(frozen=True)
class VehicleState:
    """Ego state: rear-axle pose (m, m, rad, world frame), speed (m/s, >= 0: no reverse), and the actuators' actual
    outputs: longitudinal acceleration (m/s^2) and path curvature (1/m)."""

    x: float
    y: float
    yaw: float
    v_mps: float
    accel_mps2: float = 0.0
    curvature_per_m: float = 0.0

    @property
    def yaw_rate(self) -> float:
        """rad/s: a kinematic bicycle turns at v * curvature."""
        return self.v_mps * self.curvature_per_m

    @property
    def lateral_accel_mps2(self) -> float:
        """Centripetal acceleration v^2 * curvature (m/s^2, + left)."""
        return self.v_mps * self.v_mps * self.curvature_per_m


class Vehicle:
    """The ego plant: step(accel_cmd, curvature_cmd, dt) applies lagged, limited actuators and integrates the pose."""

    def __init__(self, state: VehicleState, params: VehicleParams | None = None) -> None:
        self.params = params or VehicleParams()
        self.state = state

    def step(self, accel_cmd_mps2: float, curvature_cmd_per_m: float, dt_s: float) -> list[VehicleState]:
        """Advance by dt_s holding the commands; returns the state after every substep (the last is self.state)."""
        p = self.params
        h = dt_s / p.substeps
        # Exact discretisation of the first-order lag over one substep.
        alpha_a = 1.0 - math.exp(-h / p.accel_lag_s)
        alpha_k = 1.0 - math.exp(-h / p.curvature_lag_s)
        a_cmd = min(max(accel_cmd_mps2, p.accel_min_mps2), p.accel_max_mps2)
        k_cmd = min(max(curvature_cmd_per_m, -p.curvature_max_per_m), p.curvature_max_per_m)
        st = self.state
        out: list[VehicleState] = []
        for _ in range(p.substeps):
            da = _clamp(alpha_a * (a_cmd - st.accel_mps2), p.jerk_max_mps3 * h)
            dk = _clamp(alpha_k * (k_cmd - st.curvature_per_m), p.curvature_rate_max_per_ms * h)
            a = st.accel_mps2 + da
            k = st.curvature_per_m + dk
            # Speed stays >= 0: a braking car stops and stays stopped (no reversing), its acceleration reads 0.
            v_next = st.v_mps + a * h
            if v_next <= 0.0:
                dist = st.v_mps * st.v_mps / (-2.0 * a) if a < 0.0 else 0.0
                v_next = 0.0
                a = max(a, 0.0)
            else:
                dist = 0.5 * (st.v_mps + v_next) * h
            x, y, yaw = _arc(st.x, st.y, st.yaw, k, dist)
            st = VehicleState(x, y, yaw, v_next, a, k)
            out.append(st)
        self.state = st
        return out


def _clamp(value: float, limit: float) -> float:
    return min(max(value, -limit), limit)


def _arc(x: float, y: float, yaw: float, curvature: float, dist: float) -> tuple[float, float, float]:
    """Move dist metres along a circle of the given curvature (a straight line when it is ~0)."""
    dyaw = curvature * dist
    if abs(dyaw) < 1e-9:
        return x + dist * math.cos(yaw), y + dist * math.sin(yaw), yaw
    r = 1.0 / curvature
    return x + r * (math.sin(yaw + dyaw) - math.sin(yaw)), y - r * (math.cos(yaw + dyaw) - math.cos(yaw)), yaw + dyaw
