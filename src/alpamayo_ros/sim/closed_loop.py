"""The closed-loop world: a scenario whose ego is driven by a driver's plans, one 0.1 s tick at a time.

Per tick at sim time t (= tick * 0.1 s): observe() gives what a driver may see (seven camera frames, odometry,
the world's boxes for a marker display), the driver answers a plan for t (64 poses in the ego frame at t, see
tracking.Plan), and step() tracks the latest plan with the LQR tracker for 0.1 s on the vehicle plant while the
reactive agents move. A tick without a new plan keeps following the previous one (counted as missed); a plan
older than 1 s makes the ego brake (counted as stale).

Warm-up: for the first WARMUP_S the ego replays the scenario's own open-loop drive (planner.simulate), exactly as
generate() has it, so a driver has a full 1.5 s of ego history and camera frames when it takes over (AlpaSim forces
the recorded trajectory for its first 1.7 s for the same reason). Drivers are asked every tick; warm-up plans are
recorded but not followed, and metrics skip the warm-up ticks.

Reference drivers: ExpertDriver (the scenario's rule-based planner with privileged state: the upper bound) and
ConstantVelocityDriver (keeps its lane at its current speed, blind to everything else: the lower bound). A driver
is anything with a `name` and `plan(observation)`.
Frames: world = "odom" (x east, y north); ego frame = rear axle, x forward, y left. Units: m, s, rad, m/s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from alpamayo_ros.core.rig import FUTURE_STEPS, STEP_SEC
from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.sim.agents import EgoFootprint, ReactiveAgents
from alpamayo_ros.sim.distributions import Value
from alpamayo_ros.sim.generate import START_NS, EgoSample
from alpamayo_ros.sim.planner import (
    EGO_FRONT_M,
    EGO_HALF_WIDTH_M,
    EGO_REAR_M,
    ODOM_EVERY,
    SIM_DT,
    DriveState,
    EgoTrack,
    drive,
    simulate,
)
from alpamayo_ros.sim.planner import plan as decide
from alpamayo_ros.sim.render import Renderer
from alpamayo_ros.sim.rig import make_rig
from alpamayo_ros.sim.road import LANE_WIDTH_M, Road
from alpamayo_ros.sim.scenes import build_scenario
from alpamayo_ros.sim.tracking import LqrTracker, Plan, PlanError
from alpamayo_ros.sim.vehicle import Vehicle, VehicleParams, VehicleState
from alpamayo_ros.sim.world import Scenario, TrafficLight

TICK_S = STEP_SEC
WARMUP_S = 1.5
GOAL_TOLERANCE_M = 10.0  # the goal region starts this far (or 20 % of the reference's progress) short of it
MARKER_RANGE_M = (-40.0, 120.0)
CV_RECENTRE_S = 2.0  # road edges reported around the ego (arc length behind, ahead)


@dataclass(frozen=True)
class RoadLayout:
    """Where the paved road lies across the reference line (Frenet d, m; the ego lane is centred at d = 0).

    The defaults are the default distribution's road: one 3.5 m lane each way.
    """

    right_edge_d: float = -LANE_WIDTH_M / 2
    centre_line_d: float = LANE_WIDTH_M / 2  # between the two directions: the stop line spans right edge .. here
    left_edge_d: float = 1.5 * LANE_WIDTH_M

    @classmethod
    def of(cls, scenario: Scenario) -> RoadLayout:
        """The layout of a scenario's road (its lane count and width)."""
        return cls(-scenario.lane_width_m / 2, scenario.centre_line_d, scenario.left_edge_d)


@dataclass(frozen=True)
class AgentBox:
    """A road user as an oriented box on the ground, world frame: centre (m), heading (rad), size (length along
    its heading, width, height; m) and velocity (m/s)."""

    name: str
    kind: str
    x: float
    y: float
    yaw: float
    size_m: tuple[float, float, float]
    vx: float
    vy: float

    def corners(self) -> FloatArray:
        half = self.size_m[0] / 2
        return box_corners(self.x, self.y, self.yaw, front=half, rear=half, half_width=self.size_m[1] / 2)


def box_corners(x: float, y: float, yaw: float, *, front: float, rear: float, half_width: float) -> FloatArray:
    """(4, 2) world corners of a box around a reference point (front-left, rear-left, rear-right, front-right)."""
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[front, half_width], [-rear, half_width], [-rear, -half_width], [front, -half_width]])
    return np.asarray(local @ np.array([[c, s], [-s, c]]) + np.array([x, y]), dtype=np.float64)


def ego_corners(x: float, y: float, yaw: float) -> FloatArray:
    """(4, 2) world corners of the ego box for a rear-axle pose (front-left, rear-left, rear-right, front-right)."""
    return box_corners(x, y, yaw, front=EGO_FRONT_M, rear=EGO_REAR_M, half_width=EGO_HALF_WIDTH_M)


@dataclass(frozen=True)
class WorldState:
    """What a world marker display shows: agents, the light and the road around the ego (world frame)."""

    t_s: float
    agents: tuple[AgentBox, ...]
    light_state: str  # "none" | "green" | "yellow" | "red"
    stop_line: FloatArray | None  # (2, 2) endpoints across the ego lane
    road_edges: tuple[FloatArray, FloatArray]  # right and left edge polylines (N, 2)
    lane_divider: FloatArray  # (N, 2)
    crosswalk: FloatArray | None  # polygon (N, 2)


@dataclass(frozen=True)
class Observation:
    """One tick as a driver sees it. odometry: 50 Hz samples since the previous tick, the current one last."""

    tick: int
    t_s: float
    stamp_ns: int
    ego: EgoSample
    accel_mps2: float
    odometry: tuple[EgoSample, ...]
    images: tuple[UInt8Array, ...]  # rig order (core.rig.CAMERA_NAMES), RGB; empty when rendering is off
    world: WorldState


@dataclass(frozen=True)
class DriverOutput:
    """A driver's answer: the plan's poses ((64, 3) x, y, yaw or (64, 2), ego frame at t0) and its reasoning."""

    poses: FloatArray
    reasoning: str = ""


class Driver(Protocol):
    name: str

    def plan(self, observation: Observation) -> DriverOutput | FloatArray | None:
        """A plan for observation.t_s, or None (a missed plan)."""
        ...


@dataclass(frozen=True)
class TickRecord:
    """The world at one tick, before it steps: what the metrics and the report read."""

    tick: int
    t_s: float
    engaged: bool  # the driver's plans are followed (after the warm-up)
    x: float
    y: float
    yaw: float
    v_mps: float
    accel_mps2: float
    curvature_per_m: float
    s_m: float  # Frenet of the rear axle
    d_m: float
    front_s_m: float  # arc length of the front bumper's centre
    agents: tuple[AgentBox, ...]
    light_state: str
    plan_world: FloatArray | None  # (65, 3) the plan being followed, world poses at t0 .. t0 + 6.4 s
    new_plan: bool
    plan_age_s: float
    stale: bool
    missed: bool
    invalid_plan: str  # why this tick's plan was rejected ("" if it was not)
    reasoning: str


@dataclass(frozen=True)
class Goal:
    """Where a rollout must end: the front bumper's arc length in [front_s_min_m, front_s_max_m], stopped if asked."""

    description: str
    front_s_min_m: float
    front_s_max_m: float = math.inf
    stopped: bool = False


@dataclass
class Rollout:
    """A finished (or interrupted) rollout: the records and what the metrics need of its scenario."""

    scenario: str
    seed: int
    driver: str
    seconds: float
    road: Road
    light: TrafficLight | None
    goal: Goal
    records: list[TickRecord]
    wall_s: float = 0.0
    layout: RoadLayout = RoadLayout()


class ClosedLoopWorld:
    """A scenario (name, seed, duration, image size) stepped by 0.1 s ticks under a driver's plans.

    ``distribution`` and ``overrides`` choose the scene parameters as ``sim.scenes.build_scenario`` does (the
    same arguments give the same scene as ``alpamayo-ros synth``).
    """

    def __init__(
        self,
        name: str,
        seed: int,
        seconds: float = 20.0,
        width: int = 320,
        height: int = 180,
        *,
        render: bool = True,
        warmup_s: float = WARMUP_S,
        vehicle: VehicleParams | None = None,
        distribution: str = "default",
        overrides: dict[str, Value] | None = None,
    ) -> None:
        self.scenario: Scenario = build_scenario(name, seed, seconds, distribution, overrides)
        if not 0.0 <= warmup_s < seconds:
            raise ValueError(f"warm-up {warmup_s} s must lie within the rollout's {seconds} s")
        self.road = self.scenario.road
        self.layout = RoadLayout.of(self.scenario)
        self.reference = simulate(self.scenario)
        self.cameras = make_rig(width, height)
        self.renderer = Renderer(self.scenario, self.cameras) if render else None
        self.agents = ReactiveAgents(self.scenario)
        self.warmup_s = warmup_s
        self.num_ticks = math.floor(seconds / TICK_S + 1e-9)
        self.vehicle = Vehicle(self._reference_state(0.0), vehicle)
        self.tracker = LqrTracker(self.vehicle.params)
        self.tick = 0
        self.plan: Plan | None = None
        self.records: list[TickRecord] = []
        self._poses: list[tuple[float, float, float]] = []  # ego pose at every tick (plan origins)
        self._odometry: tuple[EgoSample, ...] = (self._odom(self.vehicle.state, 0.0),)
        self._s_hint = 0.0
        self.goal = self._goal()

    @property
    def t_s(self) -> float:
        return self.tick * TICK_S

    @property
    def done(self) -> bool:
        return self.tick >= self.num_ticks

    # ------------------------------------------------------------------------------------------- geometry
    def ego_frenet(self, state: VehicleState | None = None) -> tuple[float, float]:
        """Frenet (s, d) of the ego's rear axle (m)."""
        st = state or self.vehicle.state
        s, d = self.road.to_frenet(st.x, st.y, self._s_hint)
        return s, d

    def _footprint(self, st: VehicleState, s: float) -> EgoFootprint:
        mid = 0.5 * (EGO_FRONT_M - EGO_REAR_M)
        s_c, d_c = self.road.to_frenet(st.x + mid * math.cos(st.yaw), st.y + mid * math.sin(st.yaw), s)
        heading = float(self.road.heading_at(s))
        along = st.v_mps * math.cos(st.yaw - heading)
        half_len = 0.5 * (EGO_FRONT_M + EGO_REAR_M)
        return EgoFootprint(s_c - half_len, s_c + half_len, d_c, EGO_HALF_WIDTH_M, along)

    def _reference_state(self, t: float) -> VehicleState:
        tr = self.reference
        i = round(t / SIM_DT)
        v = float(tr.v[i])
        return VehicleState(
            float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i]), v, float(tr.accel[i]), float(tr.yaw_rate[i]) / max(v, 0.1)
        )

    def _goal(self) -> Goal:
        """Where the scenario's own open-loop drive ends, with tolerance. At a light it is "stop before the line"
        when that drive stops there; when it passed on yellow (the light's timing assumes the ego keeps its
        initial speed, so an ego still accelerating can be too close to stop), passing is the goal too."""
        sc, tr = self.scenario, self.reference
        i_end, i_start = round(sc.seconds / SIM_DT), round(self.warmup_s / SIM_DT)
        front_end = float(tr.s[i_end]) + EGO_FRONT_M
        if sc.light is not None and front_end < sc.light.s_stop_m:
            s_stop = sc.light.s_stop_m
            return Goal(f"stop before the stop line at {s_stop:.0f} m", s_stop - GOAL_TOLERANCE_M, s_stop, True)
        progress = float(tr.s[i_end] - tr.s[i_start])
        s_min = front_end - max(GOAL_TOLERANCE_M, 0.2 * progress)
        return Goal(f"reach the goal region from {s_min:.0f} m on", s_min)

    # ------------------------------------------------------------------------------------------ observing
    def _odom(self, st: VehicleState, t: float) -> EgoSample:
        return EgoSample(START_NS + round(t * 1e9), st.x, st.y, st.yaw, st.v_mps, st.yaw_rate)

    def world_state(self) -> WorldState:
        t = self.t_s
        road, sc, lay = self.road, self.scenario, self.layout
        boxes = []
        for actor in self.agents.actors():
            s_a, d_a, v_a, _ = actor.state(t)
            x, y = road.to_world(s_a, d_a)
            h = float(road.heading_at(s_a))
            d_rate = (actor.d_of_t(t + 0.05) - actor.d_of_t(max(0.0, t - 0.05))) / 0.1
            vx = v_a * math.cos(h) - d_rate * math.sin(h)
            vy = v_a * math.sin(h) + d_rate * math.cos(h)
            boxes.append(
                AgentBox(actor.name, actor.kind, float(x), float(y), h + actor.heading_rel_rad, actor.size_m, vx, vy)
            )
        s_ego, _ = self.ego_frenet()
        ss = np.arange(max(road.s_min, s_ego + MARKER_RANGE_M[0]), min(road.s_max, s_ego + MARKER_RANGE_M[1]), 2.0)

        def line(d: float) -> FloatArray:
            x, y = road.to_world(ss, np.full(ss.size, d))
            return np.stack([x, y], axis=1)

        stop_line = None
        if sc.light is not None:
            x, y = road.to_world(np.full(2, sc.light.s_stop_m), np.array([lay.right_edge_d, lay.centre_line_d]))
            stop_line = np.stack([x, y], axis=1)
        crosswalk = None
        if sc.crosswalk_s_m is not None:
            crosswalk = road.strip(sc.crosswalk_s_m, sc.crosswalk_s_m + 4.0, lay.right_edge_d, lay.left_edge_d)
        return WorldState(
            t,
            tuple(boxes),
            sc.light.state(t) if sc.light is not None else "none",
            stop_line,
            (line(lay.right_edge_d), line(lay.left_edge_d)),
            line(lay.centre_line_d),
            crosswalk,
        )

    def render(self) -> tuple[UInt8Array, ...]:
        """The seven camera frames now (empty when the world was built with render=False)."""
        if self.renderer is None:
            return ()
        st = self.vehicle.state
        return tuple(self.renderer.render(self.t_s, st.x, st.y, st.yaw, self.agents.actors()))

    def observe(self) -> Observation:
        st = self.vehicle.state
        return Observation(
            self.tick,
            self.t_s,
            START_NS + round(self.t_s * 1e9),
            self._odometry[-1],
            st.accel_mps2,
            self._odometry,
            self.render(),
            self.world_state(),
        )

    # ------------------------------------------------------------------------------------------- stepping
    def step(self, answer: DriverOutput | FloatArray | None, t0_s: float | None = None) -> TickRecord:
        """Take the driver's answer for plan time t0_s (default: now; an older t0 is anchored at the ego's pose
        then) and advance the world by one tick. Returns the record of the tick just left."""
        if self.done:
            raise RuntimeError(f"rollout already finished at {self.t_s:.1f} s")
        t = self.t_s
        st = self.vehicle.state
        engaged = t >= self.warmup_s - 1e-9
        self._poses.append((st.x, st.y, st.yaw))
        out = answer if isinstance(answer, DriverOutput) or answer is None else DriverOutput(np.asarray(answer))
        invalid = ""
        if out is not None:
            t0 = t if t0_s is None else t0_s
            k0 = round(t0 / TICK_S)
            try:
                if not 0 <= k0 <= self.tick:
                    raise PlanError(f"plan time {t0:.2f} s is not a past tick (now {t:.2f} s)")
                self.plan = Plan(t0, self._poses[k0], np.asarray(out.poses, dtype=np.float64))
            except PlanError as err:
                invalid = str(err)
        new_plan = out is not None and not invalid
        s, d = self.ego_frenet(st)
        self._s_hint = s
        fx, fy = st.x + EGO_FRONT_M * math.cos(st.yaw), st.y + EGO_FRONT_M * math.sin(st.yaw)
        front_s, _ = self.road.to_frenet(fx, fy, s)
        world = self.world_state()
        if engaged:
            cmd = self.tracker.command(st, t, self.plan)
            substates = self.vehicle.step(cmd.accel_mps2, cmd.curvature_per_m, TICK_S)
            age, stale = cmd.plan_age_s, cmd.stale
        else:
            n = round(TICK_S / SIM_DT)
            substates = [self._reference_state(t + (k + 1) * SIM_DT) for k in range(n)]
            self.vehicle.state = substates[-1]
            age = t - self.plan.t0_s if self.plan is not None else math.inf
            stale = False
        record = TickRecord(
            self.tick,
            t,
            engaged,
            st.x,
            st.y,
            st.yaw,
            st.v_mps,
            st.accel_mps2,
            st.curvature_per_m,
            s,
            d,
            front_s,
            world.agents,
            world.light_state,
            self.plan.world()[1] if self.plan is not None else None,
            new_plan,
            age,
            stale,
            engaged and not new_plan,
            invalid,
            out.reasoning if out is not None else "",
        )
        self.records.append(record)
        self.agents.step(t, TICK_S, self._footprint(st, s))
        self.tick += 1
        sub_dt = TICK_S / len(substates)
        every = max(1, round(ODOM_EVERY * SIM_DT / sub_dt))
        self._odometry = tuple(
            self._odom(sub, t + (k + 1) * sub_dt) for k, sub in enumerate(substates) if (k + 1) % every == 0
        )
        return record

    def rollout(self, driver: str, wall_s: float = 0.0) -> Rollout:
        sc = self.scenario
        records = list(self.records)
        return Rollout(
            sc.name, sc.seed, driver, sc.seconds, self.road, sc.light, self.goal, records, wall_s, layout=self.layout
        )


def to_ego_frame(origin: VehicleState, x: FloatArray, y: FloatArray, yaw: FloatArray) -> FloatArray:
    """World poses -> (N, 3) x, y, yaw in the ego frame of `origin`."""
    c, s = math.cos(origin.yaw), math.sin(origin.yaw)
    dx, dy = x - origin.x, y - origin.y
    return np.stack([c * dx + s * dy, -s * dx + c * dy, yaw - origin.yaw], axis=1)


class _PrivilegedDriver:
    """A reference driver: reads the world directly instead of the observation's sensors."""

    name = ""

    def __init__(self, world: ClosedLoopWorld) -> None:
        self.world = world

    def _ego(self) -> tuple[VehicleState, float, float]:
        """The ego's state and its Frenet (s, d) now."""
        s, d = self.world.ego_frenet()
        return self.world.vehicle.state, s, d


class ExpertDriver(_PrivilegedDriver):
    """The scenario's rule-based planner (planner.drive) replanned every tick from the ego's actual state, with
    privileged state: the live agents now and their scripts ahead. The upper bound of the drivers."""

    name = "expert"

    def track(self, observation: Observation) -> tuple[Scenario, EgoTrack]:
        """The live scenario now and the planner's drive from the ego's actual state over the 6.4 s horizon
        (SIM_DT steps, index 0 = now)."""
        st, s, d = self._ego()
        psi = st.yaw - float(self.world.road.heading_at(s))
        d_rate = st.v_mps * math.sin(math.atan2(math.sin(psi), math.cos(psi)))
        live = self.world.agents.live_scenario()
        start = DriveState(s, d, st.v_mps, st.accel_mps2, d_rate)
        return live, drive(live, observation.t_s, start, FUTURE_STEPS * round(TICK_S / SIM_DT) + 1)

    def plan(self, observation: Observation) -> DriverOutput:
        st, s, d = self._ego()
        live, track = self.track(observation)
        idx = np.arange(1, FUTURE_STEPS + 1) * round(TICK_S / SIM_DT)
        ctx = decide(live, observation.t_s, s, d, st.v_mps)
        gap = f", {ctx.gap_m:.0f} m ahead" if math.isfinite(ctx.gap_m) else ""
        reasoning = f"Binding constraint: {ctx.reason.replace('_', ' ')}{gap}; command {ctx.accel_cmd:+.1f} m/s^2."
        return DriverOutput(to_ego_frame(st, track.x[idx], track.y[idx], track.yaw[idx]), reasoning)


class ConstantVelocityDriver(_PrivilegedDriver):
    """Keeps its lane at its current speed, blind to agents and lights: the lower bound of the drivers. The plan
    returns to the lane centre linearly over CV_RECENTRE_S (the warm-up may hand over mid-manoeuvre)."""

    name = "constant_velocity"

    def plan(self, observation: Observation) -> DriverOutput:
        st, s, d = self._ego()
        t = STEP_SEC * np.arange(1, FUTURE_STEPS + 1)
        ss = s + observation.ego.v_mps * t
        x, y = self.world.road.to_world(ss, d * np.clip(1.0 - t / CV_RECENTRE_S, 0.0, 1.0))
        return DriverOutput(to_ego_frame(st, x, y, self.world.road.heading_at(ss)), "Keep lane and speed.")


REFERENCE_DRIVERS: dict[str, Callable[[ClosedLoopWorld], Driver]] = {
    ExpertDriver.name: ExpertDriver,
    ConstantVelocityDriver.name: ConstantVelocityDriver,
}


def run_rollout(world: ClosedLoopWorld, driver: Driver, on_tick: Callable[[TickRecord], None] | None = None) -> Rollout:
    """Drive the world to its end in lockstep (observe, plan, step) and return the rollout."""
    start = time.perf_counter()
    while not world.done:
        record = world.step(driver.plan(world.observe()))
        if on_tick is not None:
            on_tick(record)
    return world.rollout(driver.name, time.perf_counter() - start)
