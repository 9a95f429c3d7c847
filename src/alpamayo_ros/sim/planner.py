"""The ego's rule-based planner and the closed-form simulation that produces its trajectory.

Longitudinal: the Intelligent Driver Model (IDM, Treiber et al. 2000). Every constraint is an IDM "leader": the
nearest vehicle in the ego's corridor, a pedestrian on the crosswalk (stop before the crosswalk), a yellow/red
light (stop at the stop line, if a comfortable stop is still possible), plus a free-road term whose desired speed is
capped by the curvature ahead (lateral acceleration <= LAT_ACC_MAX), while passing a parked car, and near a crosswalk
where a pedestrian waits at the kerb (approach at a speed from which a comfortable yield is possible: defensive
driving, and it makes the slow-down follow from what the cameras show, not from when the pedestrian steps out).
The smallest acceleration wins and names the *reason* (what the reference reasoning cites).
Lateral: lane keeping at d = 0, or a nudge target that clears a parked car intruding into the lane, tracked by a
critically damped second-order law. Only the current scene state is used: the planner (hence its labels) never
knows the future.
Units: metres, seconds, m/s, m/s^2; s/d are Frenet coordinates of road.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.types import FloatArray
from alpamayo_ros.sim.world import Actor, Scenario

SIM_DT = 0.01  # integration step (s); odometry is published every ODOM_EVERY steps, cameras every CAMERA_EVERY
ODOM_EVERY = 2  # 50 Hz
CAMERA_EVERY = 10  # 10 Hz
EGO_FRONT_M = 3.8  # rear axle -> front bumper
EGO_REAR_M = 1.0
EGO_HALF_WIDTH_M = 0.95
PERCEPTION_RANGE_M = 120.0
# At night the frames show a pedestrian (and the crosswalk's markings) only inside the low beams' reach: at 46 m one is
# a few dark pixels in the tele camera, further out nothing (render._headlight_gain fades out by about 60 m). The
# planner writes the reference labels, so at night it neither slows for nor reasons about a pedestrian beyond this;
# vehicles (lit lamps) and signals stay visible to PERCEPTION_RANGE_M.
NIGHT_PEDESTRIAN_RANGE_M = 40.0
# IDM parameters (comfortable urban driving).
A_MAX = 1.5
B_COMF = 2.5
HEADWAY_S = 1.4
GAP_MIN_M = 2.5
STOP_GAP_M = 1.0  # distance kept to a stop line / crosswalk
A_MIN = -7.0
JERK_MAX = 12.0
LAT_ACC_MAX = 2.0
NUDGE_CLEARANCE_M = 0.8
NUDGE_RANGE_M = 60.0
NUDGE_LOOKAHEAD_S = 4.0
LAT_OMEGA = 1.1  # rad/s, lateral tracking bandwidth
V_CROSSWALK = 6.0  # m/s: speed at a crosswalk with a pedestrian waiting beside the lane
KERB_ZONE_M = 3.0  # a pedestrian standing this far beside the ego lane's edge counts as waiting to cross
B_ANTICIPATE = 0.8  # m/s^2: the gentle deceleration the crosswalk speed cap assumes

REASONS = ("free", "curve", "crosswalk", "lead", "pedestrian", "red_light")


@dataclass(frozen=True)
class Context:
    """What the planner saw and decided at one instant (the reference label is built from this)."""

    reason: str  # one of REASONS: the binding constraint
    accel_cmd: float
    v_desired: float
    d_target: float
    nudging: bool
    gap_m: float  # distance from the ego front to the binding object (inf if none)
    lead_v: float  # speed of the lead vehicle / 0 for stop targets
    lead_a: float
    light: str  # "none" | "green" | "yellow" | "red" (nearest light ahead within range)
    light_dist_m: float
    pedestrian_d: float  # lateral position of the nearest visible pedestrian (nan if none)
    pedestrian_dist_m: float
    heading_change_rad: float  # road heading change over the next 6.4 s of travel (+ left)
    curve_dist_m: float  # distance to where the road starts to bend (inf if straight)
    pedestrian_from_left: bool = False  # the nearest visible pedestrian crosses from the left kerb


def _idm(v: float, v_des: float, gap: float, v_lead: float, gap_min: float = GAP_MIN_M) -> float:
    free = 1.0 - (v / max(v_des, 0.1)) ** 4
    if not math.isfinite(gap):
        return A_MAX * free
    s_star = gap_min + max(0.0, v * HEADWAY_S + v * (v - v_lead) / (2.0 * math.sqrt(A_MAX * B_COMF)))
    return A_MAX * (free - (s_star / max(gap, 0.1)) ** 2)


def _nudge_target(scenario: Scenario, s: float, t: float, v: float) -> tuple[float, bool]:
    """Lateral target: clear parked cars that intrude into the ego lane, from NUDGE_RANGE_M ahead (further at speed:
    NUDGE_LOOKAHEAD_S of travel) to 5 m behind."""
    reach = max(NUDGE_RANGE_M, v * NUDGE_LOOKAHEAD_S)
    target = 0.0
    for actor in scenario.actors:
        if actor.kind != "vehicle" or actor.motion.v0_mps != 0.0:
            continue
        a_s, a_d, _, _ = actor.state(t)
        ahead = a_s - actor.size_m[0] / 2 - (s + EGO_FRONT_M)
        behind = (s - EGO_REAR_M) - (a_s + actor.size_m[0] / 2)
        left_edge = a_d + actor.size_m[1] / 2
        if ahead < reach and behind < 5.0 and left_edge > -scenario.lane_width_m / 2:
            target = max(target, left_edge + NUDGE_CLEARANCE_M + EGO_HALF_WIDTH_M)
    return target, target > 0.05


def _waiting_at_kerb(scenario: Scenario, actor: Actor, t: float) -> bool:
    """A pedestrian still standing where they started, within KERB_ZONE_M beyond either edge of the road."""
    d_now = actor.d_of_t(t)
    if actor.d_of_t(t + 0.1) != d_now or actor.d_of_t(0.0) != d_now:
        return False
    right, left = -scenario.lane_width_m / 2, scenario.left_edge_d
    return right - KERB_ZONE_M < d_now <= right or left <= d_now < left + KERB_ZONE_M


def _walks_left(actor: Actor) -> bool:
    """A crossing pedestrian faces the way they walk: +pi/2 relative to the road is towards +d (left)."""
    return math.sin(actor.heading_rel_rad) > 0.0


def pedestrian_range_m(scenario: Scenario) -> float:
    """How far ahead (m) the planner sees pedestrians: as far as the cameras show them."""
    return NIGHT_PEDESTRIAN_RANGE_M if scenario.lighting.night else PERCEPTION_RANGE_M


def _crosswalk_speed_cap(scenario: Scenario, t: float, front: float) -> float:
    """Speed cap ahead of a crosswalk with a pedestrian waiting at either kerb (inf if none)."""
    if scenario.crosswalk_s_m is None:
        return math.inf
    dist = scenario.crosswalk_s_m - STOP_GAP_M - front
    if not 0.0 < dist < pedestrian_range_m(scenario):
        return math.inf
    for actor in scenario.actors:
        if actor.kind != "pedestrian":
            continue
        if _waiting_at_kerb(scenario, actor, t):
            return math.sqrt(V_CROSSWALK**2 + 2.0 * B_ANTICIPATE * dist)
    return math.inf


def plan(scenario: Scenario, t: float, s: float, d: float, v: float) -> Context:
    """The planner's decision at time t for an ego at Frenet (s, d) with speed v."""
    road = scenario.road
    d_target, nudging = _nudge_target(scenario, s, t, v)
    front = s + EGO_FRONT_M

    # Desired speed: capped by the curvature ahead (reachable by comfortable braking) and when passing close.
    ahead = np.arange(0.0, 100.0, 2.0)
    kappa = np.abs(road.curvature(s + ahead))
    v_lim = np.sqrt(LAT_ACC_MAX / np.maximum(kappa, 1e-6))
    v_curve = float(np.min(np.sqrt(v_lim**2 + 2.0 * 1.2 * ahead)))
    v_cross = _crosswalk_speed_cap(scenario, t, front)
    v_des = scenario.v_desired_mps * (0.7 if nudging else 1.0)
    candidates: list[tuple[float, str, float, float, float]] = []  # (accel, reason, gap, lead v, lead a)
    v_free, free_reason = min((v_des, "free"), (v_curve, "curve"), (v_cross, "crosswalk"), key=lambda c: c[0])
    candidates.append((_idm(v, v_free, math.inf, 0.0), free_reason, math.inf, 0.0, 0.0))

    # Lead vehicle: nearest same-direction vehicle overlapping the corridor the ego is heading for.
    for actor in scenario.actors:
        if actor.kind != "vehicle" or actor.heading_rel_rad != 0.0:
            continue
        a_s, a_d, a_v, a_a = actor.state(t)
        gap = a_s - actor.size_m[0] / 2 - front
        if gap > PERCEPTION_RANGE_M or gap < -1.0:
            continue
        if abs(a_d - d_target) < actor.size_m[1] / 2 + EGO_HALF_WIDTH_M + 0.2:
            candidates.append((_idm(v, v_des, max(gap, 0.1), a_v), "lead", gap, a_v, a_a))

    # Pedestrian on the crosswalk, heading into or inside the ego lane: stop before the crosswalk.
    ped_d, ped_dist, ped_left = math.nan, math.inf, False
    half_lane = scenario.lane_width_m / 2
    seen_m = pedestrian_range_m(scenario)
    for actor in scenario.actors:
        if actor.kind != "pedestrian":
            continue
        a_s, a_d, _, _ = actor.state(t)
        dist = a_s - front
        if not -2.0 < dist < seen_m:
            continue
        ped_d, ped_dist, ped_left = a_d, dist, not _walks_left(actor)
        walking = actor.d_of_t(t + 0.1) != a_d
        in_conflict = -half_lane - 1.5 < a_d < half_lane + 1.0
        # Not yet clear of the ego lane on the side they walk to.
        not_cleared = a_d < half_lane + 1.0 if _walks_left(actor) else a_d > -half_lane - 1.0
        cw = scenario.crosswalk_s_m if scenario.crosswalk_s_m is not None else a_s - 2.0
        stop_gap = cw - STOP_GAP_M - front
        if stop_gap <= -0.5 and in_conflict:
            # Already over the crosswalk's edge with the pedestrian in the ego's path: hold short of them rather
            # than drive on. One still beside the lane is left to wait: the ego clears the crosswalk first.
            stop_gap = a_s - actor.size_m[0] / 2 - STOP_GAP_M - front
        if (walking or in_conflict) and not_cleared and stop_gap > -0.5:
            candidates.append((_idm(v, v_des, max(stop_gap, 0.1), 0.0, STOP_GAP_M), "pedestrian", stop_gap, 0.0, 0.0))

    # Traffic light: stop for yellow/red when a stop at <= 4.5 m/s^2 is still possible.
    light, light_dist = "none", math.inf
    if scenario.light is not None:
        dist = scenario.light.s_stop_m - front
        if -1.0 < dist < PERCEPTION_RANGE_M:
            light, light_dist = scenario.light.state(t), dist
            if light != "green" and ((dist > 0.0 and (v * v / (2.0 * dist) <= 4.5 or v < 1.0)) or abs(dist) < 1.0):
                candidates.append(
                    (_idm(v, v_des, max(dist - STOP_GAP_M, 0.1), 0.0, STOP_GAP_M), "red_light", dist, 0.0, 0.0)
                )

    accel, reason, gap, lead_v, lead_a = min(candidates, key=lambda c: c[0])
    accel = float(np.clip(accel, A_MIN, A_MAX))

    # Where does the road bend within the next 6.4 s of travel (at least 30 m)?
    travel = max(30.0, v * 6.4)
    heading_change = float(road.heading_at(s + travel) - road.heading_at(s))
    probe = np.arange(0.0, travel + 1.0, 1.0)
    bent = np.nonzero(np.abs(road.curvature(s + probe)) > 1e-4)[0]
    curve_dist = float(probe[bent[0]]) if bent.size else math.inf
    return Context(
        reason,
        accel,
        v_free,
        d_target,
        nudging,
        gap,
        lead_v,
        lead_a,
        light,
        light_dist,
        ped_d,
        ped_dist,
        heading_change,
        curve_dist,
        ped_left,
    )


@dataclass(frozen=True)
class EgoTrack:
    """The simulated ego at SIM_DT: world pose (x, y, yaw), Frenet (s, d), speed, acceleration, yaw rate."""

    t: FloatArray
    x: FloatArray
    y: FloatArray
    yaw: FloatArray
    s: FloatArray
    d: FloatArray
    v: FloatArray
    accel: FloatArray
    yaw_rate: FloatArray

    def index(self, t_sec: float) -> int:
        return round(t_sec / SIM_DT)

    def future_in_ego_frame(self, t_sec: float, steps: int = 64, step_sec: float = 0.1) -> FloatArray:
        """(steps, 3) poses (x, y, yaw) at t+step_sec .. t+steps*step_sec in the ego frame at t."""
        i0 = self.index(t_sec)
        idx = i0 + np.arange(1, steps + 1) * round(step_sec / SIM_DT)
        if idx[-1] >= self.t.size:
            raise ValueError(f"no ground truth {steps * step_sec:.1f} s beyond t={t_sec:.2f} s (simulated too short)")
        c, s = math.cos(self.yaw[i0]), math.sin(self.yaw[i0])
        dx, dy = self.x[idx] - self.x[i0], self.y[idx] - self.y[i0]
        return np.stack([c * dx + s * dy, -s * dx + c * dy, self.yaw[idx] - self.yaw[i0]], axis=1)


def simulate(scenario: Scenario, extra_sec: float = 7.0) -> EgoTrack:
    """Drive the ego through the scenario for its duration plus extra_sec (the last ground-truth futures)."""
    n = round((scenario.seconds + extra_sec) / SIM_DT) + 1
    return drive(scenario, 0.0, DriveState(0.0, 0.0, scenario.v0_mps, 0.0, 0.0), n)


@dataclass(frozen=True)
class DriveState:
    """The planner-driven ego's state: Frenet (s, d) (m), speed (m/s), acceleration (m/s^2), lateral speed dd/dt."""

    s: float
    d: float
    v: float
    accel: float
    d_rate: float


def drive(scenario: Scenario, t0: float, start: DriveState, n: int) -> EgoTrack:
    """n steps of SIM_DT of the rule-based planner driving the ego from `start` at time t0 (the planner runs at
    20 Hz from t0; t0 should be a multiple of 0.05 s for the same schedule as simulate)."""
    t = t0 + np.arange(n) * SIM_DT
    s = np.zeros(n)
    d = np.zeros(n)
    v = np.zeros(n)
    acc = np.zeros(n)
    psi = np.zeros(n)  # heading relative to the road
    s_i, d_i, v_i, a_i, dd_i = start.s, start.d, start.v, start.accel, start.d_rate
    road = scenario.road
    for i in range(n):
        s[i], d[i], v[i], acc[i] = s_i, d_i, v_i, a_i
        psi[i] = math.asin(float(np.clip(dd_i / v_i, -0.5, 0.5))) if v_i > 0.05 else 0.0
        if i % 5 == 0:  # the planner runs at 20 Hz, control holds in between
            ctx = plan(scenario, float(t[i]), s_i, d_i, v_i)
        a_i += float(np.clip(ctx.accel_cmd - a_i, -JERK_MAX * SIM_DT, JERK_MAX * SIM_DT))
        if v_i <= 0.0 and a_i < 0.0:
            a_i = 0.0
        # Lateral: critically damped tracking of d_target, frozen at standstill.
        gain = min(1.0, v_i / 2.0)
        dd_acc = gain * (LAT_OMEGA**2 * (ctx.d_target - d_i) - 2.0 * LAT_OMEGA * dd_i)
        dd_i += dd_acc * SIM_DT
        dd_i = float(np.clip(dd_i, -0.5 * v_i, 0.5 * v_i))
        kappa = float(road.curvature(s_i))
        ds = math.sqrt(max(v_i * v_i - dd_i * dd_i, 0.0)) / max(1.0 - kappa * d_i, 0.5)
        s_i += ds * SIM_DT
        d_i += dd_i * SIM_DT
        v_i = max(0.0, v_i + a_i * SIM_DT)
    x, y = road.to_world(s, d)
    yaw = road.heading_at(s) + psi
    yaw_rate = np.gradient(yaw, SIM_DT)
    return EgoTrack(t, x, y, yaw, s, d, v, acc, yaw_rate)
