"""Plan tracking for the closed-loop ego: two decoupled LQR controllers on a kinematic bicycle, as nuPlan's tracker.

A plan is what a driver answers at one tick: 64 poses at 0.1 s in the ego frame at its time t0 (x forward, y left,
yaw relative; pose i at t0 + (i+1) * 0.1 s). The tracker turns it into world coordinates with the ego's recorded
pose at t0 (the plan's origin, at t0 itself), so it can follow a plan that is older than the current time: the
reference is indexed by time, not by the tick that delivered it.

Longitudinal (time-indexed): the ego's arc length projected onto the plan's path minus the arc length the plan
reaches at the current time (station error), the speed error, and the plant's lagged acceleration form the state;
input is the acceleration command. Lateral (path-indexed, so a late ego is not pulled across a bend): lateral
offset from the nearest point of the path, heading error, and the curvature error of the lagged steering; input is
the curvature command. Each is an infinite-horizon discrete LQR (Riccati iteration in numpy) on the error dynamics
linearised at the current speed; nuPlan solves the same kind of problem over a 10-step horizon. Feed-forward: the
plan's acceleration and curvature one actuator lag ahead. Pure pursuit is not used: it has no notion of time, so it
cannot follow a speed profile (a stop) and loses its look-ahead at walking speed.

A plan older than STALE_AFTER_S (or none at all) makes the ego brake at STALE_BRAKE_MPS2 while it keeps steering
along the last plan's path; the returned command says so, for the caller to count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.rig import FUTURE_STEPS, STEP_SEC
from alpamayo_ros.core.types import FloatArray
from alpamayo_ros.sim.vehicle import VehicleParams, VehicleState

STALE_AFTER_S = 1.0
STALE_BRAKE_MPS2 = -3.0  # firm, inside nuPlan's comfort bound (-4.05 m/s^2): a planned fallback, not an emergency
CONTROL_DT_S = STEP_SEC
MIN_LINEARISATION_MPS = 1.0  # below this the lateral gains are those of 1 m/s (a standing car cannot steer its pose)


class PlanError(ValueError):
    """A plan that cannot be tracked (wrong shape, non-finite poses)."""


@dataclass(frozen=True)
class Plan:
    """A driver's plan, anchored in the world.

    t0_s: the sim time the plan was made for; origin: the ego's world pose (x m, y m, yaw rad) at t0;
    poses: (64, 3) x, y (m), yaw (rad) in the ego frame at t0, or (64, 2) x, y (yaw then follows the path).
    """

    t0_s: float
    origin: tuple[float, float, float]
    poses: FloatArray

    def __post_init__(self) -> None:
        p = np.asarray(self.poses, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] != FUTURE_STEPS or p.shape[1] not in (2, 3):
            raise PlanError(f"a plan needs ({FUTURE_STEPS}, 2|3) poses, got shape {p.shape}")
        if not np.isfinite(p).all():
            raise PlanError("a plan has non-finite poses (NaN or inf)")

    def world(self) -> tuple[FloatArray, FloatArray]:
        """(65,) times after t0 (s) and (65, 3) world poses (x, y, yaw), the origin first."""
        p = np.asarray(self.poses, dtype=np.float64)
        xy = np.vstack([[0.0, 0.0], p[:, :2]])
        yaw = np.concatenate([[0.0], p[:, 2]]) if p.shape[1] == 3 else _path_heading(xy)
        ox, oy, oyaw = self.origin
        c, s = math.cos(oyaw), math.sin(oyaw)
        wx = ox + c * xy[:, 0] - s * xy[:, 1]
        wy = oy + s * xy[:, 0] + c * xy[:, 1]
        times = np.arange(FUTURE_STEPS + 1) * STEP_SEC
        return times, np.stack([wx, wy, np.unwrap(yaw) + oyaw], axis=1)


def _path_heading(xy: FloatArray) -> FloatArray:
    """Heading of each point from the position deltas; held where the path stands still (< 1 cm steps)."""
    d = np.diff(xy, axis=0)
    moving = np.hypot(d[:, 0], d[:, 1]) > 0.01
    heading = np.zeros(len(xy))
    last = 0.0
    for i, step in enumerate(d):
        if moving[i]:
            last = math.atan2(step[1], step[0])
        heading[i + 1] = last
    first_moving = np.nonzero(moving)[0]
    heading[0] = heading[first_moving[0] + 1] if first_moving.size else 0.0
    return heading


@dataclass(frozen=True)
class TrackingCommand:
    """What the tracker commands for the next tick, and why."""

    accel_mps2: float
    curvature_per_m: float
    plan_age_s: float  # inf without a plan
    stale: bool  # braking because the plan is older than STALE_AFTER_S (or missing)
    lateral_error_m: float  # + ego left of the path
    station_error_m: float  # + ego ahead of where the plan is now


@dataclass(frozen=True)
class TrackerGains:
    """LQR weights. Longitudinal state (station m, speed m/s, accel m/s^2), lateral (offset m, heading rad,
    curvature 1/m); the weights make 1 m of station error cost like 1 m/s of speed error, and 0.2 m of offset like
    0.1 rad of heading error or 0.01 1/m of curvature command."""

    lon_q: tuple[float, float, float] = (1.0, 1.0, 0.0)
    lon_r: float = 1.0
    lat_q: tuple[float, float, float] = (25.0, 100.0, 0.0)
    lat_r: float = 1.0e4


def dlqr(a: FloatArray, b: FloatArray, q: FloatArray, r: FloatArray, iterations: int = 2000) -> FloatArray:
    """Gain K of the infinite-horizon discrete LQR (u = -K x) by Riccati iteration until it stops changing."""
    p = q.copy()
    for _ in range(iterations):
        bt_p = b.T @ p
        k = np.linalg.solve(r + bt_p @ b, bt_p @ a)
        p_next = q + a.T @ p @ (a - b @ k)
        if np.allclose(p_next, p, rtol=1e-10, atol=1e-12):
            p = p_next
            break
        p = p_next
    bt_p = b.T @ p
    gain: FloatArray = np.linalg.solve(r + bt_p @ b, bt_p @ a)
    return gain


def _discretise(a_c: FloatArray, b_c: FloatArray, dt: float, n: int = 20) -> tuple[FloatArray, FloatArray]:
    """Zero-order-hold discretisation by n Euler substeps (accurate to O(dt^2/n); no scipy needed)."""
    h = dt / n
    step = np.eye(len(a_c)) + a_c * h
    a_d = np.eye(len(a_c))
    b_d = np.zeros_like(b_c)
    for _ in range(n):
        b_d = step @ b_d + b_c * h
        a_d = step @ a_d
    return a_d, b_d


class LqrTracker:
    """Follows Plans with the vehicle's lags (VehicleParams); construct once (gains are precomputed)."""

    def __init__(self, vehicle: VehicleParams | None = None, gains: TrackerGains | None = None) -> None:
        vehicle = vehicle or VehicleParams()
        gains = gains or TrackerGains()
        self.vehicle = vehicle
        tau_a, tau_k = vehicle.accel_lag_s, vehicle.curvature_lag_s
        a_c = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0 / tau_a]])
        b_c = np.array([[0.0], [0.0], [1.0 / tau_a]])
        a_d, b_d = _discretise(a_c, b_c, CONTROL_DT_S)
        self._lon_k = dlqr(a_d, b_d, np.diag(gains.lon_q), np.array([[gains.lon_r]]))[0]
        # Lateral gains on a speed grid, interpolated at run time.
        self._speeds = np.arange(MIN_LINEARISATION_MPS, 40.01, 0.5)
        lat = []
        for v in self._speeds:
            a_c = np.array([[0.0, v, 0.0], [0.0, 0.0, v], [0.0, 0.0, -1.0 / tau_k]])
            b_c = np.array([[0.0], [0.0], [1.0 / tau_k]])
            a_d, b_d = _discretise(a_c, b_c, CONTROL_DT_S)
            lat.append(dlqr(a_d, b_d, np.diag(gains.lat_q), np.array([[gains.lat_r]]))[0])
        self._lat_k = np.array(lat)

    def command(self, state: VehicleState, t_s: float, plan: Plan | None) -> TrackingCommand:
        """The (acceleration, curvature) command for the ego in `state` at sim time t_s, following `plan`."""
        if plan is None:
            return TrackingCommand(STALE_BRAKE_MPS2, state.curvature_per_m, math.inf, True, 0.0, 0.0)
        age = t_s - plan.t0_s
        times, poses = plan.world()
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poses[:, :2], axis=0).T))])
        # Path projection: nearest point of the polyline, its arc length, tangent, lateral offset.
        s_proj, e_d, heading = _project(poses, arc, state.x, state.y)
        e_psi = _wrap(state.yaw - heading)
        kappa_ref = _curvature_at(poses, arc, s_proj + state.v_mps * self.vehicle.curvature_lag_s)
        v_lin = min(max(state.v_mps, MIN_LINEARISATION_MPS), float(self._speeds[-1]))
        k_lat = np.array([np.interp(v_lin, self._speeds, self._lat_k[:, j]) for j in range(3)])
        u_lat = -float(k_lat @ np.array([e_d, e_psi, state.curvature_per_m - kappa_ref]))
        curvature = kappa_ref + u_lat
        # Time-indexed station reference (clamped to the plan's end).
        s_ref, v_ref, a_ref = _station(times, arc, age)
        e_s = s_proj - s_ref
        if age > STALE_AFTER_S:
            return TrackingCommand(STALE_BRAKE_MPS2, curvature, age, True, e_d, e_s)
        _, _, a_ff = _station(times, arc, age + self.vehicle.accel_lag_s)
        e_v = state.v_mps - v_ref
        accel = a_ff - float(self._lon_k @ np.array([e_s, e_v, state.accel_mps2 - a_ref]))
        return TrackingCommand(accel, curvature, age, False, e_d, e_s)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def _project(poses: FloatArray, arc: FloatArray, x: float, y: float) -> tuple[float, float, float]:
    """(arc length m, signed lateral offset m (+ left), path heading rad) of the nearest point on the polyline."""
    p0, p1 = poses[:-1, :2], poses[1:, :2]
    seg = p1 - p0
    length2 = np.einsum("ij,ij->i", seg, seg)
    rel = np.array([x, y]) - p0
    u = np.clip(np.einsum("ij,ij->i", rel, seg) / np.maximum(length2, 1e-12), 0.0, 1.0)
    nearest = p0 + u[:, None] * seg
    dist2 = np.sum((np.array([x, y]) - nearest) ** 2, axis=1)
    i = int(np.argmin(dist2))
    # A standing plan has no direction of travel: its heading is the pose's own.
    heading = float(poses[i, 2]) if length2[i] < 1e-8 else math.atan2(seg[i, 1], seg[i, 0])
    normal = np.array([-math.sin(heading), math.cos(heading)])
    e_d = float((np.array([x, y]) - nearest[i]) @ normal)
    return float(arc[i] + u[i] * math.sqrt(length2[i])), e_d, heading


def _curvature_at(poses: FloatArray, arc: FloatArray, s: float) -> float:
    """Path curvature (1/m) at arc length s: heading change over arc length, over a window of >= 2 m."""
    if arc[-1] < 2.0:
        return 0.0
    s0, s1 = max(0.0, s - 1.0), min(float(arc[-1]), s + 1.0)
    if s1 - s0 < 2.0:
        s0, s1 = (s1 - 2.0, s1) if s1 >= arc[-1] else (s0, s0 + 2.0)
    h0, h1 = np.interp([s0, s1], arc, poses[:, 2])
    return float((h1 - h0) / (s1 - s0))


def _station(times: FloatArray, arc: FloatArray, t: float) -> tuple[float, float, float]:
    """Arc length (m), speed (m/s) and acceleration (m/s^2) the plan has at time t after its t0."""
    t = min(max(t, 0.0), float(times[-1]))
    speed = np.diff(arc) / np.diff(times)  # per segment, at the segment midpoints
    mid = 0.5 * (times[1:] + times[:-1])
    accel = np.diff(speed) / np.diff(mid)
    s = float(np.interp(t, times, arc))
    v = float(np.interp(t, mid, speed))
    a = float(np.interp(t, 0.5 * (mid[1:] + mid[:-1]), accel)) if t < times[-1] else 0.0
    return s, v, a
