"""Plan tracking for the closed-loop ego: two decoupled LQR controllers on a kinematic bicycle, as nuPlan's tracker.

A plan is what a driver answers at one tick: 64 poses at 0.1 s in the ego frame at its time t0 (x forward, y left,
yaw relative; pose i at t0 + (i+1) * 0.1 s). The tracker turns it into world coordinates with the ego's recorded
pose at t0 (the plan's origin, at t0 itself), so it can follow a plan that is older than the current time: the
reference is indexed by time, not by the tick that delivered it.

The path is the 64 planned poses, extended straight beyond both ends; the origin is where the ego was, so a first
pose beside or ahead of it is an error to correct smoothly, not a swerve or a burst of speed to copy.
Longitudinal (time-indexed): the ego's arc length projected onto the path minus the arc length the plan reaches at
the current time (station error), the speed error, and the plant's lagged acceleration form the state; input is
the acceleration command. Lateral (path-indexed, so a late ego is not pulled across a bend): lateral offset from the
nearest point of the path, heading error, and the curvature error of the lagged steering; input is the curvature
command. Each is an infinite-horizon discrete LQR (Riccati iteration in numpy) on the error dynamics
linearised at the current speed; nuPlan solves the same kind of problem over a 10-step horizon. Feed-forward: the
plan's acceleration and curvature one actuator lag ahead. Pure pursuit is not used: it has no notion of time, so it
cannot follow a speed profile (a stop) and loses its look-ahead at walking speed.

A plan older than STALE_AFTER_S (or none at all) makes the ego brake at STALE_BRAKE_MPS2 while it keeps steering
along the last plan's path; the returned command says so, for the caller to count.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.rig import FUTURE_STEPS, STEP_SEC
from alpamayo_ros.core.types import FloatArray
from alpamayo_ros.sim.vehicle import VehicleParams, VehicleState

STALE_AFTER_S = 1.0
STALE_BRAKE_MPS2 = -3.0  # firm, inside nuPlan's comfort bound (-4.05 m/s^2): a planned fallback, not an emergency
CONTROL_DT_S = STEP_SEC
ACCEL_WINDOW_S = 0.3
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
    """Heading (rad) of the origin and each pose from the position deltas: 0 at the origin (the ego frame's x
    axis), central differences between the poses, held where the path stands still (steps < 1 cm)."""
    poses = xy[1:]
    ahead = np.vstack([poses[1:], poses[-1:]])
    behind = np.vstack([poses[:1], poses[:-1]])
    delta = ahead - behind
    heading = np.zeros(len(xy))
    last = 0.0
    for i, step in enumerate(delta):
        if math.hypot(step[0], step[1]) > 0.01:
            last = math.atan2(step[1], step[0])
        heading[i + 1] = last
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
    curvature 1/m). Longitudinal: 0.5 m of station error costs like 1 m/s of speed error or 1 m/s^2 of command, so
    a stop lands within centimetres while the command stays within nuPlan's comfort bounds on a 2 m/s^2 stop.
    Lateral: 0.2 m of offset costs like 0.1 rad of heading error or 0.01 1/m of curvature command."""

    lon_q: tuple[float, float, float] = (4.0, 1.0, 0.0)
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


@functools.cache
def _lqr_gains(vehicle: VehicleParams, gains: TrackerGains) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Longitudinal gain (3,), the lateral gains' speed grid (n,) and the lateral gains (n, 3); cached (~0.7 s)."""
    tau_a, tau_k = vehicle.accel_lag_s, vehicle.curvature_lag_s
    a_c = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0 / tau_a]])
    b_c = np.array([[0.0], [0.0], [1.0 / tau_a]])
    a_d, b_d = _discretise(a_c, b_c, CONTROL_DT_S)
    lon_k = dlqr(a_d, b_d, np.diag(gains.lon_q), np.array([[gains.lon_r]]))[0]
    speeds = np.arange(MIN_LINEARISATION_MPS, 40.01, 0.5)
    lat = []
    for v in speeds:
        a_c = np.array([[0.0, v, 0.0], [0.0, 0.0, v], [0.0, 0.0, -1.0 / tau_k]])
        b_c = np.array([[0.0], [0.0], [1.0 / tau_k]])
        a_d, b_d = _discretise(a_c, b_c, CONTROL_DT_S)
        lat.append(dlqr(a_d, b_d, np.diag(gains.lat_q), np.array([[gains.lat_r]]))[0])
    return lon_k, speeds, np.array(lat)


class LqrTracker:
    """Follows Plans with the vehicle's lags (VehicleParams); construct once (gains are precomputed)."""

    def __init__(self, vehicle: VehicleParams | None = None, gains: TrackerGains | None = None) -> None:
        self.vehicle = vehicle or VehicleParams()
        self._lon_k, self._speeds, self._lat_k = _lqr_gains(self.vehicle, gains or TrackerGains())

    def command(self, state: VehicleState, t_s: float, plan: Plan | None) -> TrackingCommand:
        """The (acceleration, curvature) command for the ego in `state` at sim time t_s, following `plan`."""
        if plan is None:
            return TrackingCommand(STALE_BRAKE_MPS2, state.curvature_per_m, math.inf, True, 0.0, 0.0)
        age = t_s - plan.t0_s
        times, poses = plan.world()
        path = poses[1:]  # the 64 planned poses; the origin only anchors time and arc length
        arc = _arc_length(poses)
        s_proj, e_d, heading, s_seg = _project(path, arc[1:], state.x, state.y)
        kappa_ref = _curvature_at(path, arc[1:], s_proj + state.v_mps * self.vehicle.curvature_lag_s)
        # The segment's direction is the path heading at its middle; carried to the projection along the bend.
        e_psi = _wrap(state.yaw - heading - _curvature_at(path, arc[1:], s_proj) * (s_proj - s_seg))
        v_lin = min(max(state.v_mps, MIN_LINEARISATION_MPS), float(self._speeds[-1]))
        k_lat = np.array([np.interp(v_lin, self._speeds, self._lat_k[:, j]) for j in range(3)])
        u_lat = -float(k_lat @ np.array([e_d, e_psi, state.curvature_per_m - kappa_ref]))
        curvature = kappa_ref + u_lat
        # Time-indexed station reference (held at the plan's end).
        s_ref, v_ref, a_ref = _station(times[1:], arc[1:], age)
        e_s = s_proj - s_ref
        if age > STALE_AFTER_S + 1e-6:  # tolerance: tick times are sums of 0.1 s
            return TrackingCommand(STALE_BRAKE_MPS2, curvature, age, True, e_d, e_s)
        _, _, a_ff = _station(times[1:], arc[1:], age + self.vehicle.accel_lag_s)
        a_ff = min(max(a_ff, self.vehicle.accel_min_mps2), self.vehicle.accel_max_mps2)
        e_v = state.v_mps - v_ref
        accel = a_ff - float(self._lon_k @ np.array([e_s, e_v, state.accel_mps2 - a_ref]))
        return TrackingCommand(accel, curvature, age, False, e_d, e_s)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def _arc_length(poses: FloatArray) -> FloatArray:
    """(65,) arc length (m) of the origin and the 64 poses along the plan's path. The lead-in from the origin
    counts only its part along the path's first direction, so a plan whose first pose sits beside the ego (a
    lateral offset to correct) does not read as a burst of speed."""
    seg = np.diff(poses[1:, :2], axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    moving = np.nonzero(length > 1e-3)[0]
    yaw0 = math.atan2(seg[moving[0], 1], seg[moving[0], 0]) if moving.size else float(poses[1, 2])
    lead_in = max(0.0, float((poses[1, :2] - poses[0, :2]) @ np.array([math.cos(yaw0), math.sin(yaw0)])))
    return np.concatenate([[0.0], lead_in + np.concatenate([[0.0], np.cumsum(length)])])


def _project(path: FloatArray, arc: FloatArray, x: float, y: float) -> tuple[float, float, float, float]:
    """(arc length m, signed lateral offset m (+ left), heading rad and arc length of the middle of the nearest
    segment) of the nearest point on the polyline, extended straight beyond both ends (an ego behind the first
    pose or past the last still has an error). A standing segment points along its pose's own heading."""
    seg = path[1:, :2] - path[:-1, :2]
    length = np.hypot(seg[:, 0], seg[:, 1])
    yaw = np.where(length > 1e-6, np.arctan2(seg[:, 1], seg[:, 0]), path[:-1, 2])
    unit = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
    rel = np.array([x, y]) - path[:-1, :2]
    along = np.einsum("ij,ij->i", rel, unit)
    lo, hi = np.zeros(len(seg)), length.copy()
    lo[0], hi[-1] = -np.inf, np.inf
    along = np.clip(along, lo, hi)
    offset = rel - along[:, None] * unit
    i = int(np.argmin(np.einsum("ij,ij->i", offset, offset)))
    e_d = float(offset[i] @ np.array([-unit[i, 1], unit[i, 0]]))
    return float(arc[i] + along[i]), e_d, float(yaw[i]), float(arc[i] + 0.5 * length[i])


def _curvature_at(path: FloatArray, arc: FloatArray, s: float) -> float:
    """Path curvature (1/m) at arc length s: heading change over a 2 m window of arc length (0 on a short plan)."""
    if arc[-1] - arc[0] < 2.0:
        return 0.0
    s0 = min(max(s - 1.0, float(arc[0])), float(arc[-1]) - 2.0)
    h0, h1 = np.interp([s0, s0 + 2.0], arc, path[:, 2])
    return float((h1 - h0) / 2.0)


def _station(times: FloatArray, arc: FloatArray, t: float) -> tuple[float, float, float]:
    """Arc length (m), speed (m/s) and acceleration (m/s^2) the plan has at time t after its t0, from the planned
    poses alone (times and arc length of the 64 poses): held at the end, and extrapolated back from the first two
    poses before the first (the origin is where the ego was, not where the plan wanted it, so the distance to the
    first pose is a station error, not a speed). Acceleration is the speed change over ACCEL_WINDOW_S: a plan's
    0.1 s steps are too noisy to difference."""
    t = min(t, float(times[-1]))
    speed = np.diff(arc) / np.diff(times)  # per segment, at the segment midpoints
    mid = 0.5 * (times[1:] + times[:-1])
    s = float(np.interp(t, times, arc)) if t >= times[0] else float(arc[0] - speed[0] * (times[0] - t))
    v = float(np.interp(t, mid, speed))
    if t >= times[-1]:
        return s, v, 0.0
    # A centred window, shifted inside the speed samples near the plan's ends (clamping would read as no change).
    lo = min(max(t - ACCEL_WINDOW_S / 2, float(mid[0])), float(mid[-1]) - ACCEL_WINDOW_S)
    v_lo, v_hi = np.interp([lo, lo + ACCEL_WINDOW_S], mid, speed)
    return s, v, float((v_hi - v_lo) / ACCEL_WINDOW_S)
