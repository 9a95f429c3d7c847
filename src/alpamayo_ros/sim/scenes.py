"""Build a scenario from its kind, seed and scene parameters: the road, the events, the traffic and the look.

Events: the seven kinds (SCENARIOS), each on a straight road or a bend (``bend``), optionally followed by a
pedestrian crossing (``second_event``). Every event is placed relative to where the ego will be: the lead vehicle
brakes at the event time, the pedestrian steps out so that the ego arrives a set margin later, and the traffic light
turns yellow where the ego's *planned* motion (the rule-based planner integrated up to the yellow time) leaves it a
comfortable stop, except in a ``late_yellow`` episode, where it turns yellow too late to stop and the ego drives
through on yellow. The same planned motion keeps a pedestrian from stepping out in front of an ego that could no
longer stop, or where stopping and passing first are too close a call (the first event or the approach changes the
ego's speed from what the nominal timing assumes): such a pedestrian steps out earlier, within the event's window,
or else waits and crosses behind the ego.

Draw order matters: the legacy parameters and details are drawn from the main stream in the original generator's
order (so the ``default`` distribution reproduces its scenes), the new parameters from a second stream.
Units: metres, seconds, m/s, m/s^2; (s, d) are Frenet coordinates of road.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from alpamayo_ros.sim import dressing
from alpamayo_ros.sim.distributions import BEND_KINDS, SECOND_EVENT_KINDS, Value
from alpamayo_ros.sim.params import Draws, SceneParams
from alpamayo_ros.sim.planner import (
    EGO_FRONT_M,
    EGO_HALF_WIDTH_M,
    EGO_REAR_M,
    SIM_DT,
    DriveState,
    EgoTrack,
    drive,
    simulate,
)
from alpamayo_ros.sim.road import Road, Segment
from alpamayo_ros.sim.world import SCENARIOS, Actor, Motion, Scenario, TrafficLight

# A late yellow leaves the ego this deceleration to stop (m/s^2): beyond the planner's 4.5 m/s^2, so it goes on.
LATE_YELLOW_DECEL_MPS2 = 6.5
STOP_LINE_BEHIND_M = 5.0  # the line lies this far beyond a comfortable stop of the ego's rear axle
CROSSWALK_M = 4.0
LEAD_RESUME_MPS2 = 1.5  # a lead vehicle that slows for a while (a pedestrian follows) speeds up again at this rate
STEP_OUT_SCAN_S = 0.1  # how finely an earlier step-out is searched for (s)
STEP_OUT_CLEARANCE_M = 0.5  # the planned ego must keep this far from a crossing pedestrian's box (m)
STEP_OUT_MARGIN_S = 0.3  # the planner's choice must hold with the step-out this much earlier and later (s)
STEP_OUT_MARK = "<step-out>"  # stands for the step-out time ("8.2 s") in a description until the crossing is timed


@dataclass(frozen=True)
class _Crossing:
    """A pedestrian's crossing before it is timed: the actor, when it would step out, and how early it may."""

    actor: Actor
    d_start_m: float
    d_end_m: float
    walk_mps: float
    nominal_s: float  # the step-out time the scene asks for
    earliest_s: float  # stepping out earlier would break the scene (the lead vehicle has not yet passed)
    behind_delay_s: float  # a pedestrian who waits for the ego steps out this long after its rear has passed


def build_scenario(
    name: str,
    seed: int,
    seconds: float,
    distribution: str = "default",
    overrides: dict[str, Value] | None = None,
) -> Scenario:
    """Draw a scenario of the named kind from a distribution (distributions.py), with some parameters fixed by
    overrides; identical arguments give an identical scenario. Raises ValueError (ParamError) on bad arguments."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    if seconds < 2.0:
        raise ValueError(f"scenario too short: {seconds} s (need >= 2 s: 1.5 s of history plus a tick)")
    draws = Draws(name, SCENARIOS.index(name), seed, distribution, dict(overrides or {}))
    return _Builder(draws, name, seed, seconds).build()


def build_from_params(params: SceneParams) -> Scenario:
    """The scenario a SceneParams describes (every axis fixed to its recorded value)."""
    return build_scenario(params.kind, params.seed, params.seconds, params.distribution, params.axis_values())


class _Builder:
    """One scenario's construction, in draw order (see the module docstring)."""

    def __init__(self, draws: Draws, name: str, seed: int, seconds: float) -> None:
        self.draws, self.name, self.seed, self.seconds = draws, name, seed, seconds
        self.actors: list[Actor] = []
        self.crosswalk_s: float | None = None
        self.crossing: _Crossing | None = None
        self.description = ""

    def build(self) -> Scenario:
        d, name, seconds = self.draws, self.name, self.seconds
        # The new axes first, from their own stream: the road's cross-section, what else happens, the camera.
        lanes = round(d.new("lanes_each_way"))
        self.lane_w = d.new("lane_width_m")
        bend = d.new_choice("bend") if name in BEND_KINDS else "none"
        second = d.new_choice("second_event") if name in SECOND_EVENT_KINDS else "none"
        has_pedestrian = name == "pedestrian_crossing" or second == "pedestrian"
        kerb = d.new_choice("pedestrian_kerb") if has_pedestrian else "right"
        self.clothing = d.new_choice("pedestrian_clothing") if has_pedestrian else "any"
        late_yellow = d.new_flag("late_yellow") if name == "red_light_stop_line" else False
        parked = round(d.new("parked_count"))
        traffic_speed = d.new("traffic_speed_scale")
        self.size_scale = d.new("vehicle_size_scale")
        self.colors = d.new_choice("vehicle_colors")
        density = d.new("scenery_density")
        exposure = d.new("exposure_gain")
        noise = d.new("noise_std")
        self.left_kerb = kerb == "left"
        self.right_edge = -self.lane_w / 2
        self.left_edge = (2 * lanes - 0.5) * self.lane_w

        # The legacy draws, in the original order.
        rng = d.main
        horizon = seconds + 8.0  # ground truth needs 6.4 s beyond the last frame
        v_des = d.legacy("ego_speed_mps")
        v0 = d.legacy("initial_speed_ratio") * v_des
        t_event = max(1.6, d.legacy("event_time_ratio") * seconds)
        if name == "free_road":
            v0 = d.legacy("free_road_speed_ratio") * v_des
        self.v0, self.t_event = v0, t_event
        straight = Segment(v_des * horizon + 250.0, 0.0)
        segments: tuple[Segment, ...] = (straight,)
        anchor = v0 * t_event  # where the event happens (s, m): a bend under it starts before this
        stop_decel = yellow_s = 0.0
        lead: Actor | None = None

        if name == "free_road":
            self.description = "empty ego lane; ego accelerates to its desired speed and keeps it"
        elif name == "lead_vehicle_braking":
            lead, anchor = self._lead_vehicle(second == "pedestrian")
        elif name == "pedestrian_crossing":
            anchor = v0 * (t_event + d.legacy("crosswalk_margin_s")) + 10.0
            walk_v = d.legacy("pedestrian_speed_mps")
            self._pedestrian(
                rng,
                anchor,
                t_event,
                walk_v,
                lambda: d.legacy("pedestrian_height_m"),
                earliest_s=0.0,
                behind_delay_s=1.0,
            )
            self.description = f"pedestrian starts crossing at {STEP_OUT_MARK} on a crosswalk {anchor:.0f} m ahead"
        elif name == "stationary_vehicle_nudge":
            anchor = self._parked_vehicle()
        elif name in ("curve_left", "curve_right"):
            radius = d.legacy("bend_radius_m")
            sign = 1.0 if name == "curve_left" else -1.0
            start = v0 * max(0.0, t_event - 1.0) + d.legacy("bend_lead_in_m")
            segments = (Segment(start, 0.0), Segment(radius * np.pi * 0.75, sign / radius), straight)
            self.description = f"{'left' if sign > 0 else 'right'} curve of radius {radius:.0f} m after {start:.0f} m"
        elif name == "red_light_stop_line":
            stop_decel = d.legacy("stop_decel_mps2")
            yellow_s = d.legacy("yellow_duration_s")

        if bend != "none":
            radius = d.new("bend_radius_m")
            start = max(5.0, anchor - d.new("event_bend_lead_m"))
            sign = 1.0 if bend == "left" else -1.0
            segments = (Segment(start, 0.0), Segment(radius * np.pi * 0.75, sign / radius), straight)
            self.description += f"; on a {bend} bend of radius {radius:.0f} m from {start:.0f} m"
        if second == "pedestrian":
            self._second_pedestrian(anchor, lead)

        # Oncoming traffic in the other direction and cars parked on the shoulder: clutter the planner must ignore.
        for _ in range(round(d.legacy("oncoming_count"))):
            s_on = float(rng.uniform(60.0, 60.0 + v_des * seconds * 2.0))
            motion = Motion(s_on, -float(rng.uniform(8.0, 14.0)) * traffic_speed)
            lane = lanes + (int(d.extra.integers(lanes)) if lanes > 1 else 0)
            self.actors.append(self._vehicle(rng, motion, lane * self.lane_w, oncoming=True, name="oncoming"))
        for _ in range(parked):
            s_p = float(d.extra.uniform(15.0, 15.0 + v_des * seconds))
            car = self._vehicle(d.extra, Motion(s_p, 0.0), 0.0, name="parked on the shoulder")
            d_p = self.right_edge - 0.35 - car.size_m[1] / 2
            self.actors.append(Actor(car.kind, car.size_m, car.color, car.motion, dressing.const(d_p), 0.0, car.name))

        road = Road(segments)
        scenery = dressing.props(rng, road.s_max - 10.0, self.right_edge, self.left_edge, density)
        look = d.legacy_choice("lighting")
        sun_az = d.legacy("sun_azimuth_rad")
        sun_el = d.legacy("sun_elevation_rad")
        lighting = dressing.lighting(look, sun_az, sun_el, d.legacy("ground_brightness"), d.legacy("fog_scale"))
        scenario = Scenario(
            name=name,
            seed=self.seed,
            seconds=seconds,
            road=road,
            v_desired_mps=v_des,
            v0_mps=v0,
            actors=self.actors,
            props=scenery,
            crosswalk_s_m=self.crosswalk_s,
            lighting=lighting,
            description=self.description.removeprefix("; "),
            lane_width_m=self.lane_w,
            lanes_each_way=lanes,
            exposure_gain=exposure,
            noise_std=noise,
        )
        if name == "red_light_stop_line":
            _place_light(scenario, t_event, yellow_s, stop_decel, late_yellow)
        if self.crossing is not None:
            _time_crossing(scenario, self.crossing)
        scenario.params = d.params(self.seed, seconds)
        return scenario

    def _vehicle(
        self, rng: np.random.Generator, motion: Motion, d: float, oncoming: bool = False, name: str = ""
    ) -> Actor:
        return dressing.vehicle(
            rng, motion, d, size_scale=self.size_scale, colors=self.colors, oncoming=oncoming, name=name
        )

    def _lead_vehicle(self, resumes: bool) -> tuple[Actor, float]:
        """The lead vehicle braking at the event time: to a stop, or (a pedestrian follows) to half its speed and
        back up (so that it clears the way to the second event)."""
        d, v0, t_event = self.draws, self.v0, self.t_event
        gap = d.legacy("lead_gap_m")
        v_lead = v0 * d.legacy("lead_speed_ratio")
        decel = -d.legacy("lead_decel_mps2")
        phases: tuple[tuple[float, float], ...] = ((t_event, decel),)
        if resumes:  # down to half its speed, then back up to it at LEAD_RESUME_MPS2
            t_half = t_event + 0.5 * v_lead / -decel
            phases = ((t_event, decel), (t_half, LEAD_RESUME_MPS2), (t_half + 0.5 * v_lead / LEAD_RESUME_MPS2, 0.0))
        lead = self._vehicle(d.main, Motion(gap + 4.5, v_lead, phases), 0.0, name="lead vehicle")
        self.actors.append(lead)
        self.description = f"lead vehicle {gap:.0f} m ahead brakes at {t_event:.1f} s with {decel:.1f} m/s^2 to a stop"
        if resumes:
            self.description = self.description.replace("to a stop", "to half its speed and speeds up again")
        return lead, lead.motion.state(t_event)[0]

    def _parked_vehicle(self) -> float:
        """A parked car reaching into the ego lane, which the ego passes on the left."""
        d = self.draws
        s_obs = self.v0 * d.legacy("parked_time_s") + 25.0
        intrusion = d.legacy("parked_intrusion_m")  # how far the parked car's left side reaches into the ego lane
        width = 1.85
        d_obs = self.right_edge - width / 2 + intrusion
        color = dressing.vehicle_color(d.main, self.colors)
        size = (4.6 * self.size_scale, width, 1.5 * self.size_scale)
        self.actors.append(
            Actor("vehicle", size, color, Motion(s_obs, 0.0), dressing.const(d_obs), 0.0, "parked vehicle")
        )
        self.description = f"parked vehicle {s_obs:.0f} m ahead blocks {intrusion:.1f} m of the ego lane"
        return s_obs

    def _pedestrian(
        self,
        rng: np.random.Generator,
        crosswalk_s: float,
        t_start: float,
        walk_v: float,
        height: Callable[[], float],
        *,
        earliest_s: float,
        behind_delay_s: float,
    ) -> None:
        """A pedestrian who steps off the chosen kerb at t_start (timed against the ego's planned motion once the
        scene is complete: _time_crossing) and crosses the whole road on a crosswalk (the clothing colour is drawn
        before the height: the original order)."""
        near, far = self.right_edge - 2.0, self.left_edge + 2.0
        d_start, d_end = (far, near) if self.left_kerb else (near, far)
        color = dressing.clothing_color(rng, self.clothing)
        heading = -np.pi / 2 if self.left_kerb else np.pi / 2
        size = (0.45, 0.6, height())
        d_of_t = dressing.crossing(d_start, d_end, t_start, walk_v)
        actor = Actor("pedestrian", size, color, Motion(crosswalk_s + 2.0, 0.0), d_of_t, heading, "pedestrian")
        self.actors.append(actor)
        self.crosswalk_s = crosswalk_s
        self.crossing = _Crossing(actor, d_start, d_end, walk_v, t_start, earliest_s, behind_delay_s)

    def _second_pedestrian(self, first_event_s: float, lead: Actor | None) -> None:
        """A pedestrian crossing beyond the first event: after the lead vehicle has passed the crosswalk, or timed
        so that the ego would arrive second_event_delay_s after they step out."""
        d = self.draws
        crosswalk = first_event_s + d.new("second_event_distance_m")
        delay = d.new("second_event_delay_s")
        walk_v = d.new("pedestrian_speed_mps")
        height = d.new("pedestrian_height_m")
        earliest = self.t_event + 1.0
        if lead is not None:
            t_start = earliest
            for t in np.arange(0.0, self.seconds + 8.0, 0.05):
                if lead.motion.state(float(t))[0] - lead.size_m[0] / 2 > crosswalk + CROSSWALK_M:
                    earliest = max(earliest, float(t))
                    t_start = float(t) + delay
                    break
        else:
            t_start = max(earliest, (crosswalk - 10.0) / max(self.v0, 1.0) - delay)
        self._pedestrian(d.extra, crosswalk, t_start, walk_v, lambda: height, earliest_s=earliest, behind_delay_s=delay)
        self.description += f"; then a pedestrian crosses at {STEP_OUT_MARK} on a crosswalk {crosswalk:.0f} m ahead"


def _time_crossing(scenario: Scenario, crossing: _Crossing) -> None:
    """Time the pedestrian's step-out so that the rule-based planner can yield to them.

    A scene may ask for an urgent stop, never an impossible or a marginal one. A step-out time is settled when the
    planner, driving the scene with the pedestrian stepping out then, keeps clear of them, and does the same (passes
    ahead of them, or lets them cross first) with the step-out STEP_OUT_MARGIN_S earlier or later: an ego that runs
    a little behind or ahead of its plan in closed loop then faces the same choice, not a last-moment stop for a
    pedestrian the plan passed. The nominal time stands when it is settled; otherwise the latest settled time in
    [earliest, nominal] (STEP_OUT_SCAN_S steps); if there is none, the pedestrian waits at the kerb until the ego's
    rear has passed the crosswalk and crosses behind it. The planner sees a pedestrian only where the frames show
    one (planner.pedestrian_range_m), so at night the check holds it to its low beams. The description's
    STEP_OUT_MARK becomes the time, with the nominal one when it moved."""
    index = scenario.actors.index(crossing.actor)
    outcomes: dict[float, str | None] = {}

    def stepping_out(t_start: float) -> Actor:
        d_of_t = dressing.crossing(crossing.d_start_m, crossing.d_end_m, t_start, crossing.walk_mps)
        return replace(crossing.actor, d_of_t=d_of_t)

    def outcome(t_start: float) -> str | None:
        """Who crosses first (_who_first), or None when the planned ego comes too close to the pedestrian."""
        key = round(t_start, 3)
        if key not in outcomes:
            scenario.actors[index] = actor = stepping_out(t_start)
            track = simulate(scenario)
            outcomes[key] = None if _conflicts(track, actor) else _who_first(track, actor, crossing.d_start_m)
        return outcomes[key]

    def settled(t_start: float) -> bool:
        first = outcome(t_start)
        margins = (t_start - STEP_OUT_MARGIN_S, t_start + STEP_OUT_MARGIN_S)
        return first is not None and all(outcome(t) == first for t in margins)

    t_start, behind = crossing.nominal_s, False
    if not settled(t_start):
        candidates = np.arange(crossing.nominal_s - STEP_OUT_SCAN_S, crossing.earliest_s - 1e-9, -STEP_OUT_SCAN_S)
        found = next((float(t) for t in candidates if settled(float(t))), None)
        if found is not None:
            t_start = found
        else:
            scenario.actors[index] = stepping_out(math.inf)
            track = simulate(scenario)
            i = _rear_past(track, crossing.actor.motion.s0_m + CROSSWALK_M / 2)
            t_start = (float(track.t[i]) if i is not None else scenario.seconds) + crossing.behind_delay_s
            behind = True
    scenario.actors[index] = stepping_out(t_start)
    text = f"{t_start:.1f} s"
    if behind:
        text += " (behind the ego, which could not have yielded safely)"
    elif t_start != crossing.nominal_s:
        text += f" (moved from {crossing.nominal_s:.1f} s so that the ego can yield or clearly pass first)"
    scenario.description = scenario.description.replace(STEP_OUT_MARK, text)


def _conflicts(track: EgoTrack, pedestrian: Actor) -> bool:
    """Whether the planned ego comes within STEP_OUT_CLEARANCE_M of the pedestrian's box (Frenet boxes)."""
    near = pedestrian.motion.s0_m - pedestrian.size_m[0] / 2 - STEP_OUT_CLEARANCE_M
    far = pedestrian.motion.s0_m + pedestrian.size_m[0] / 2 + STEP_OUT_CLEARANCE_M
    overlap_s = (track.s + EGO_FRONT_M > near) & (track.s - EGO_REAR_M < far)
    if not overlap_s.any():
        return False
    idx = np.nonzero(overlap_s)[0]
    ped_d = np.array([pedestrian.d_of_t(float(t)) for t in track.t[idx]])
    reach = EGO_HALF_WIDTH_M + pedestrian.size_m[1] / 2 + STEP_OUT_CLEARANCE_M
    return bool(np.any(np.abs(ped_d - track.d[idx]) < reach))


def _who_first(track: EgoTrack, pedestrian: Actor, d_start: float) -> str:
    """Who crosses first: "ahead" when the planned ego's rear passes the pedestrian while they are still on their
    starting side of it, "yields" when they have crossed its path by then (or it never passes them)."""
    i = _rear_past(track, pedestrian.motion.s0_m + pedestrian.size_m[0] / 2)
    if i is None:
        return "yields"
    side_now = pedestrian.d_of_t(float(track.t[i])) - float(track.d[i])
    return "ahead" if side_now * (d_start - float(track.d[i])) > 0.0 else "yields"


def _rear_past(track: EgoTrack, s_m: float) -> int | None:
    """The first tick at which the planned ego's rear bumper is beyond arc length s_m (None: never on the track)."""
    beyond = np.nonzero(track.s - EGO_REAR_M > s_m)[0]
    return int(beyond[0]) if beyond.size else None


def _place_light(scenario: Scenario, t_yellow: float, yellow_s: float, stop_decel: float, late: bool) -> None:
    """Put the traffic light where the ego's planned motion reaches the yellow with a comfortable stop ahead (or,
    late, with too little room to stop: the ego drives through on yellow).

    The ego's motion before the yellow does not depend on the light (the planner ignores a green light), so the
    planner driving the scene without it gives the ego's rear-axle position and speed at the yellow."""
    n = round(t_yellow / SIM_DT) + 1
    track = drive(scenario, 0.0, DriveState(0.0, 0.0, scenario.v0_mps, 0.0, 0.0), n)
    s_y, v_y = float(track.s[-1]), float(track.v[-1])
    if late:
        s_stop = s_y + EGO_FRONT_M + v_y * v_y / (2.0 * LATE_YELLOW_DECEL_MPS2)
        how = "too late to stop: the ego drives through on yellow"
    else:
        s_stop = s_y + v_y * v_y / (2.0 * stop_decel) + STOP_LINE_BEHIND_M
        how = "then red"
    scenario.light = TrafficLight(s_stop, t_yellow, t_yellow + yellow_s)
    scenario.crosswalk_s_m = s_stop + 1.0
    text = f"traffic light at {s_stop:.0f} m turns yellow at {t_yellow:.1f} s, {how}"
    scenario.description = f"{text}; {scenario.description}" if scenario.description else text
