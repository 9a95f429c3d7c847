"""Closed-loop metrics of one rollout, named as AlpaSim and nuPlan name them where they exist.

Every metric reads the engaged ticks only (the warm-up replay is not the driver's driving), at the 0.1 s tick.
Boxes: the ego box around its rear axle (planner.EGO_FRONT_M ahead, EGO_REAR_M behind, EGO_HALF_WIDTH_M each
side), agents' boxes as the world reports them; exact rectangles (AlpaSim shrinks its polygons 2 % to absorb
label noise; ours have none).

- collision_{front,rear,lateral,any} (AlpaSim): the ego box intersects an agent's box; front if the agent touches
  the ego's front bumper edge, else rear if it touches the rear bumper edge, else lateral.
- collision_at_fault (AlpaSim): front or lateral; a rear contact (being hit from behind) is not at fault.
- min_distance_to_obstacle_m (AlpaSim): smallest box-to-box distance to any agent (0 on contact).
- min_ttc_s (nuPlan's time-to-collision): ego and agents projected at constant velocity (the ego along its
  heading) over TTC_HORIZON_S in TTC_STEP_S steps; the first time of an at-fault (front or lateral) contact; not
  computed while the ego stands (a standing ego cannot be at fault). inf when nothing is hit.
- close_encounter: OUR definition (the Alpamayo paper's metric has no published one): a tick where some agent has
  a TTC under CLOSE_TTC_S (nuPlan's 0.95 s bound) or a box gap under CLOSE_GAP_M while that gap is closing. The gap
  is 0.5 m rather than 1 m because the rule-based expert passes parked cars with 0.8 m of clearance by design.
- offroad (AlpaSim; nuPlan's drivable-area compliance with its 0.3 m tolerance): an ego box corner lies more than
  OFFROAD_TOLERANCE_M outside the paved road (every lane of both directions: Frenet d in [-1.75, 5.25] m on the
  default road, ``closed_loop.RoadLayout`` of the scenario otherwise).
- red_light_violation: the ego's front bumper crosses the stop line while the light is red.
- progress_m: rear-axle arc length travelled along the road; progress_ratio (nuPlan's ego progress along the
  expert route): progress_m / the expert's progress_m on the same scenario (1 when the expert moves < 5 m).
- comfort (nuPlan's bounds): longitudinal acceleration in [-4.05, 2.40] m/s^2, |lateral acceleration| <= 4.89 m/s^2,
  |jerk| (magnitude of the acceleration vector's rate) <= 8.37 m/s^3, |yaw rate| <= 0.95 rad/s; read from the
  plant's actual acceleration and curvature, differenced over the 0.1 s tick for jerk without smoothing (nuPlan
  differentiates through a Savitzky-Golay filter, so ours reads higher on a step; the roads' straight-to-arc
  joins are such steps: entering a bend at speed alone gives ~9 m/s^3 of lateral jerk).
- plan_deviation_{mean,max}_m (AlpaSim's plan_deviation, without its decay weighting): mean L2 distance between
  consecutive plans over the times both cover (world frame).
- missed_plans (ticks without a new plan), stale_plans (ticks braking on a plan older than 1 s), invalid_plans.
- scene_score (AlpaSim's, plus red light): 0 on an at-fault collision, offroad or red-light violation, else
  min(progress_ratio / 0.8, 1).
- verdict: failure conditions fire at a tick (at-fault collision, offroad, red-light violation); the scenario's
  goal (closed_loop.Goal: reach the goal region, or stop before the line while red) is checked at the end.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import shapely

from alpamayo_ros.core.types import FloatArray
from alpamayo_ros.sim.closed_loop import Rollout, TickRecord, ego_corners

LON_ACCEL_MIN_MPS2, LON_ACCEL_MAX_MPS2 = -4.05, 2.40
LAT_ACCEL_MAX_MPS2 = 4.89
JERK_MAX_MPS3 = 8.37
YAW_RATE_MAX_RPS = 0.95
TTC_HORIZON_S, TTC_STEP_S = 3.0, 0.1
STOPPED_MPS = 0.05
CLOSE_TTC_S = 0.95
CLOSE_GAP_M = 0.5
OFFROAD_TOLERANCE_M = 0.3
PROGRESS_SCORE_FULL = 0.8
EXPERT_MIN_PROGRESS_M = 5.0
GOAL_STOPPED_MPS = 0.5
NEAR_M = 60.0  # agents farther than this (centre to centre) are neither hit nor close within the TTC horizon


@dataclass(frozen=True)
class Failure:
    """A failure condition that fired: its name, the tick and time it fired at, and what happened."""

    condition: str
    tick: int
    t_s: float
    detail: str


@dataclass(frozen=True)
class TickSeries:
    """Per engaged tick: time (s), speed, acceleration, gap to the nearest agent (m), min TTC (s), close flag."""

    tick: FloatArray
    t_s: FloatArray
    v_mps: FloatArray
    accel_mps2: FloatArray
    gap_m: FloatArray
    ttc_s: FloatArray
    close: FloatArray
    contact: list[str]  # "" | "front" | "rear" | "lateral" (the worst contact of the tick)


@dataclass(frozen=True)
class RolloutMetrics:
    scenario: str
    seed: int
    driver: str
    ticks: int
    collision_any: bool
    collision_at_fault: bool
    collision_front: bool
    collision_lateral: bool
    collision_rear: bool
    min_distance_to_obstacle_m: float
    min_ttc_s: float
    close_encounter: bool
    close_encounter_ticks: int
    offroad: bool
    red_light_violation: bool
    progress_m: float
    progress_ratio: float
    max_lon_accel_mps2: float
    min_lon_accel_mps2: float
    max_abs_lat_accel_mps2: float
    max_abs_jerk_mps3: float
    max_abs_yaw_rate_rps: float
    comfortable: bool
    plan_deviation_mean_m: float
    plan_deviation_max_m: float
    missed_plans: int
    stale_plans: int
    invalid_plans: int
    scene_score: float
    passed: bool
    failures: tuple[Failure, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (inf becomes None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def _polygon(corners: FloatArray) -> shapely.Polygon:
    return shapely.Polygon(corners)


def classify_contact(ego: FloatArray, agent: shapely.Polygon) -> str:
    """ "front" | "rear" | "lateral" for an agent polygon touching the ego box (corners as ego_corners), else ""."""
    if not shapely.intersects(_polygon(ego), agent):
        return ""
    if shapely.intersects(shapely.LineString([ego[0], ego[3]]), agent):
        return "front"
    if shapely.intersects(shapely.LineString([ego[1], ego[2]]), agent):
        return "rear"
    return "lateral"


def time_to_collision(rec: TickRecord, agent_index: int) -> float:
    """Seconds until an at-fault contact with the agent at constant velocities (inf: none within the horizon)."""
    if rec.v_mps < STOPPED_MPS:
        return math.inf
    agent = rec.agents[agent_index]
    ego = ego_corners(rec.x, rec.y, rec.yaw)
    box = agent.corners()
    ego_v = rec.v_mps * np.array([math.cos(rec.yaw), math.sin(rec.yaw)])
    agent_v = np.array([agent.vx, agent.vy])
    for tau in np.arange(0.0, TTC_HORIZON_S + 1e-9, TTC_STEP_S):
        contact = classify_contact(ego + tau * ego_v, _polygon(box + tau * agent_v))
        if contact in ("front", "lateral"):
            return float(tau)
    return math.inf


def tick_series(rollout: Rollout) -> TickSeries:
    """Gap, TTC, contact and close-encounter flags for every engaged tick."""
    records = [r for r in rollout.records if r.engaged]
    gaps, ttcs, close, contacts = [], [], [], []
    previous: dict[int, float] = {}
    for rec in records:
        ego = ego_corners(rec.x, rec.y, rec.yaw)
        ego_poly = _polygon(ego)
        gap_min, ttc_min, is_close, worst = math.inf, math.inf, False, ""
        current: dict[int, float] = {}
        for i, agent in enumerate(rec.agents):
            if math.hypot(agent.x - rec.x, agent.y - rec.y) > NEAR_M:
                continue
            poly = _polygon(agent.corners())
            gap = float(shapely.distance(ego_poly, poly))
            current[i] = gap
            ttc = time_to_collision(rec, i)
            closing = i in previous and gap < previous[i] - 1e-3
            is_close = is_close or ttc < CLOSE_TTC_S or (gap < CLOSE_GAP_M and closing)
            contact = classify_contact(ego, poly)
            if contact and worst in ("", "rear"):
                worst = contact
            gap_min, ttc_min = min(gap_min, gap), min(ttc_min, ttc)
        previous = current
        gaps.append(gap_min)
        ttcs.append(ttc_min)
        close.append(is_close)
        contacts.append(worst)
    return TickSeries(
        np.array([r.tick for r in records], dtype=np.float64),
        np.array([r.t_s for r in records]),
        np.array([r.v_mps for r in records]),
        np.array([r.accel_mps2 for r in records]),
        np.array(gaps),
        np.array(ttcs),
        np.array(close, dtype=np.float64),
        contacts,
    )


def offroad_ticks(rollout: Rollout) -> list[int]:
    """Ticks (record indices among the engaged ones) with an ego corner beyond the road edge + tolerance."""
    out = []
    records = [r for r in rollout.records if r.engaged]
    lay = rollout.layout
    for k, rec in enumerate(records):
        for cx, cy in ego_corners(rec.x, rec.y, rec.yaw):
            _, d = rollout.road.to_frenet(float(cx), float(cy), rec.s_m)
            if d < lay.right_edge_d - OFFROAD_TOLERANCE_M or d > lay.left_edge_d + OFFROAD_TOLERANCE_M:
                out.append(k)
                break
    return out


def red_light_crossings(rollout: Rollout) -> list[int]:
    """Engaged-tick indices where the front bumper crossed the stop line (since the previous tick) on red."""
    if rollout.light is None:
        return []
    s_stop = rollout.light.s_stop_m
    records = [r for r in rollout.records if r.engaged]
    return [
        k
        for k in range(1, len(records))
        if records[k - 1].front_s_m < s_stop <= records[k].front_s_m and records[k].light_state == "red"
    ]


def comfort(records: list[TickRecord], dt: float = 0.1) -> dict[str, float]:
    """Extremes of the comfort quantities (nuPlan's names and bounds) over the records."""
    a = np.array([r.accel_mps2 for r in records])
    v = np.array([r.v_mps for r in records])
    kappa = np.array([r.curvature_per_m for r in records])
    lat = v * v * kappa
    jerk = np.hypot(np.diff(a), np.diff(lat)) / dt if len(records) > 1 else np.zeros(1)
    return {
        "max_lon_accel_mps2": float(a.max()),
        "min_lon_accel_mps2": float(a.min()),
        "max_abs_lat_accel_mps2": float(np.abs(lat).max()),
        "max_abs_jerk_mps3": float(np.abs(jerk).max()),
        "max_abs_yaw_rate_rps": float(np.abs(v * kappa).max()),
    }


def plan_deviation(records: list[TickRecord]) -> FloatArray:
    """Per pair of consecutive new plans one tick apart: mean L2 (m) over the times both plans cover."""
    out = []
    for prev, cur in itertools.pairwise(records):
        if prev.plan_world is None or cur.plan_world is None or not (prev.new_plan and cur.new_plan):
            continue
        # prev[j + 1] and cur[j] are the same instant; cur[0] is the ego itself, not planned.
        diff = prev.plan_world[2:, :2] - cur.plan_world[1:-1, :2]
        out.append(float(np.mean(np.hypot(diff[:, 0], diff[:, 1]))))
    return np.array(out)


def progress_m(rollout: Rollout) -> float:
    records = [r for r in rollout.records if r.engaged]
    return float(records[-1].s_m - records[0].s_m) if records else 0.0


def scene_score(at_fault: bool, offroad: bool, red_light: bool, progress_ratio: float) -> float:
    if at_fault or offroad or red_light:
        return 0.0
    return float(min(max(progress_ratio, 0.0) / PROGRESS_SCORE_FULL, 1.0))


def evaluate_rollout(rollout: Rollout, expert_progress_m: float | None = None) -> RolloutMetrics:
    """All metrics of a rollout; expert_progress_m: the expert's progress on the same scenario (None: the
    rollout is the expert's own, ratio 1)."""
    records = [r for r in rollout.records if r.engaged]
    if not records:
        raise ValueError(f"rollout {rollout.scenario}/{rollout.seed} has no engaged ticks (all warm-up)")
    series = tick_series(rollout)
    progress = progress_m(rollout)
    if expert_progress_m is None or expert_progress_m < EXPERT_MIN_PROGRESS_M:
        ratio = 1.0
    else:
        ratio = progress / expert_progress_m
    failures: list[Failure] = []
    at_fault = [k for k, c in enumerate(series.contact) if c in ("front", "lateral")]
    if at_fault:
        k = at_fault[0]
        failures.append(Failure("collision_at_fault", records[k].tick, records[k].t_s, f"{series.contact[k]} contact"))
    off = offroad_ticks(rollout)
    if off:
        failures.append(Failure("offroad", records[off[0]].tick, records[off[0]].t_s, "ego box beyond the road edge"))
    red = red_light_crossings(rollout)
    if red:
        failures.append(Failure("red_light_violation", records[red[0]].tick, records[red[0]].t_s, "stop line on red"))
    goal, last = rollout.goal, records[-1]
    in_region = goal.front_s_min_m <= last.front_s_m <= goal.front_s_max_m
    if not in_region or (goal.stopped and last.v_mps > GOAL_STOPPED_MPS):
        failures.append(
            Failure(
                "goal_not_reached",
                last.tick,
                last.t_s,
                f"{goal.description}; front bumper at {last.front_s_m:.1f} m, {last.v_mps:.1f} m/s",
            )
        )
    failures.sort(key=lambda f: f.tick)
    cf = comfort(records)
    deviation = plan_deviation(records)
    comfortable = (
        cf["min_lon_accel_mps2"] >= LON_ACCEL_MIN_MPS2
        and cf["max_lon_accel_mps2"] <= LON_ACCEL_MAX_MPS2
        and cf["max_abs_lat_accel_mps2"] <= LAT_ACCEL_MAX_MPS2
        and cf["max_abs_jerk_mps3"] <= JERK_MAX_MPS3
        and cf["max_abs_yaw_rate_rps"] <= YAW_RATE_MAX_RPS
    )
    return RolloutMetrics(
        scenario=rollout.scenario,
        seed=rollout.seed,
        driver=rollout.driver,
        ticks=len(records),
        collision_any=any(series.contact),
        collision_at_fault=bool(at_fault),
        collision_front="front" in series.contact,
        collision_lateral="lateral" in series.contact,
        collision_rear="rear" in series.contact,
        min_distance_to_obstacle_m=float(series.gap_m.min()),
        min_ttc_s=float(series.ttc_s.min()),
        close_encounter=bool(series.close.any()),
        close_encounter_ticks=int(series.close.sum()),
        offroad=bool(off),
        red_light_violation=bool(red),
        progress_m=progress,
        progress_ratio=ratio,
        comfortable=comfortable,
        plan_deviation_mean_m=float(deviation.mean()) if deviation.size else 0.0,
        plan_deviation_max_m=float(deviation.max()) if deviation.size else 0.0,
        missed_plans=sum(r.missed for r in records),
        stale_plans=sum(r.stale for r in records),
        invalid_plans=sum(bool(r.invalid_plan) for r in records),
        scene_score=scene_score(bool(at_fault), bool(off), bool(red), ratio),
        passed=not failures,
        failures=tuple(failures),
        **cf,
    )
