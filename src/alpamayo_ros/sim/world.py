"""Scenario content: the road, the other road users and the scene dressing, randomised per seed.

Everything dynamic is a pure function of time so the renderer, the planner and the ground truth agree by
construction. Actors live in Frenet coordinates of the road (see road.py); boxes are (length, width, height) in
metres, colours RGB 0..255.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from alpamayo_ros.sim.road import LANE_WIDTH_M, Road, Segment

SCENARIOS: tuple[str, ...] = (
    "free_road",
    "lead_vehicle_braking",
    "pedestrian_crossing",
    "stationary_vehicle_nudge",
    "curve_left",
    "curve_right",
    "red_light_stop_line",
)

Color = tuple[int, int, int]
VEHICLE_COLORS: tuple[Color, ...] = (
    (200, 30, 30),
    (30, 60, 170),
    (230, 230, 230),
    (25, 25, 28),
    (140, 140, 150),
    (200, 160, 30),
    (40, 120, 60),
)


@dataclass(frozen=True)
class Motion:
    """Longitudinal motion along the road: piecewise-constant acceleration, speed clamped to >= 0.

    phases: (start time s, acceleration m/s^2) in time order; before the first phase the actor cruises at v0.
    """

    s0_m: float
    v0_mps: float
    phases: tuple[tuple[float, float], ...] = ()

    def state(self, t: float) -> tuple[float, float, float]:
        """(s m, v m/s, a m/s^2) at time t, integrated in closed form phase by phase."""
        s, v, t_prev, a = self.s0_m, self.v0_mps, 0.0, 0.0
        for t_start, a_next in (*self.phases, (np.inf, 0.0)):
            t_end = min(t, t_start)
            if t_end > t_prev:
                s, v = _advance(s, v, a, t_end - t_prev)
                t_prev = t_end
            if t <= t_start:
                return s, v, (a if v > 0.0 or a > 0.0 else 0.0)
            a = a_next
        return s, v, a  # pragma: no cover - loop always returns


def _advance(s: float, v: float, a: float, dt: float) -> tuple[float, float]:
    """Constant acceleration for dt; a braking actor stops and stays stopped (oncoming actors have v < 0, a = 0)."""
    if a < 0.0 and v >= 0.0 and v + a * dt < 0.0:
        return s + v * v / (-2.0 * a), 0.0
    return s + v * dt + 0.5 * a * dt * dt, v + a * dt


@dataclass(frozen=True)
class Actor:
    """A box-shaped road user (vehicle or pedestrian). d(t) gives its lateral offset (crossing pedestrians)."""

    kind: str  # "vehicle" | "pedestrian"
    size_m: tuple[float, float, float]  # length (along its heading), width, height
    color: Color
    motion: Motion
    d_of_t: Callable[[float], float]
    heading_rel_rad: float = 0.0  # heading relative to the road direction (pi: oncoming; +pi/2: walking left)
    name: str = ""

    def state(self, t: float) -> tuple[float, float, float, float]:
        """(s, d, v along the road, a along the road) at time t."""
        s, v, a = self.motion.state(t)
        return s, self.d_of_t(t), v, a


@dataclass(frozen=True)
class TrafficLight:
    """A signal on the right of the ego lane, its stop line across the ego lane at s_stop_m."""

    s_stop_m: float
    t_yellow_s: float  # green before, yellow from here
    t_red_s: float  # red from here on

    def state(self, t: float) -> str:
        if t < self.t_yellow_s:
            return "green"
        return "yellow" if t < self.t_red_s else "red"


@dataclass(frozen=True)
class Prop:
    """Static dressing beside the road (trees, buildings, posts): a box at world Frenet (s, d)."""

    s_m: float
    d_m: float
    size_m: tuple[float, float, float]
    color: Color
    z0_m: float = 0.0  # height of the bottom face (tree crowns float above their trunk)


@dataclass(frozen=True)
class Lighting:
    """Per-seed look: sky colours, sun direction (for box shading), overall brightness and fog distance."""

    sky_top: Color
    sky_horizon: Color
    ground_tint: float  # multiplies ground/lane colours
    sun_dir: tuple[float, float, float]  # unit vector towards the sun, world frame
    fog_m: float  # distance at which 63 % of a colour is fog


@dataclass
class Scenario:
    """A fully specified scenario (after the seed has been drawn)."""

    name: str
    seed: int
    seconds: float
    road: Road
    v_desired_mps: float
    v0_mps: float
    actors: list[Actor] = field(default_factory=list)
    props: list[Prop] = field(default_factory=list)
    light: TrafficLight | None = None
    crosswalk_s_m: float | None = None  # start of a 4 m wide zebra crossing across both lanes
    lighting: Lighting = field(
        default_factory=lambda: Lighting((70, 120, 200), (190, 210, 230), 1.0, (0.3, 0.2, 0.93), 90.0)
    )
    description: str = ""


def _const(value: float) -> Callable[[float], float]:
    return lambda _t: value


def _lighting(rng: np.random.Generator) -> Lighting:
    kind = rng.choice(["noon", "overcast", "dusk"])
    if kind == "noon":
        sky = ((60, 110, 200), (180, 205, 235), 1.0, 120.0)
    elif kind == "overcast":
        sky = ((150, 155, 165), (200, 200, 205), 0.85, 70.0)
    else:
        sky = ((40, 50, 100), (230, 150, 90), 0.6, 80.0)
    az = rng.uniform(-np.pi, np.pi)
    el = rng.uniform(0.3, 1.2) if kind != "dusk" else rng.uniform(0.05, 0.25)
    sun = (float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)), float(np.sin(el)))
    return Lighting(sky[0], sky[1], float(sky[2] * rng.uniform(0.9, 1.1)), sun, float(sky[3] * rng.uniform(0.8, 1.2)))


def _color(rng: np.random.Generator) -> Color:
    base = VEHICLE_COLORS[int(rng.integers(len(VEHICLE_COLORS)))]
    jitter = rng.integers(-15, 16, size=3)
    return (
        int(np.clip(base[0] + jitter[0], 0, 255)),
        int(np.clip(base[1] + jitter[1], 0, 255)),
        int(np.clip(base[2] + jitter[2], 0, 255)),
    )


def _vehicle(rng: np.random.Generator, motion: Motion, d: float, oncoming: bool = False, name: str = "") -> Actor:
    size = (float(rng.uniform(4.2, 5.0)), float(rng.uniform(1.75, 1.95)), float(rng.uniform(1.4, 1.7)))
    return Actor("vehicle", size, _color(rng), motion, _const(d), np.pi if oncoming else 0.0, name)


def _props(rng: np.random.Generator, s_end: float) -> list[Prop]:
    """Trees, posts and buildings on both sides, so motion is visible even on an empty road."""
    props: list[Prop] = []
    s = -140.0
    while s < s_end:
        for side in (-1.0, 1.0):
            edge = -LANE_WIDTH_M / 2 if side < 0 else 1.5 * LANE_WIDTH_M
            r = rng.uniform()
            if r < 0.45:  # tree: trunk + crown
                d = edge + side * rng.uniform(3.0, 9.0)
                h = rng.uniform(4.0, 8.0)
                green = (int(rng.integers(30, 70)), int(rng.integers(90, 150)), int(rng.integers(30, 60)))
                props.append(Prop(s, d, (0.4, 0.4, h * 0.45), (90, 65, 40)))
                c = rng.uniform(2.5, 4.5)
                props.append(Prop(s, d, (c, c, h * 0.6), green, z0_m=h * 0.4))
            elif r < 0.65:  # building
                d = edge + side * rng.uniform(14.0, 25.0)
                gray = int(rng.integers(120, 210))
                tint = rng.integers(-20, 21, size=3)
                color = tuple(int(np.clip(gray + t, 0, 255)) for t in tint)
                props.append(
                    Prop(s, d, (rng.uniform(8, 20), rng.uniform(8, 15), rng.uniform(6, 18)), color)  # type: ignore[arg-type]
                )
            elif r < 0.85:  # delineator post close to the road edge
                props.append(Prop(s, edge + side * 1.2, (0.15, 0.15, 1.0), (235, 235, 235)))
        s += float(rng.uniform(9.0, 18.0))
    return props


def build_scenario(name: str, seed: int, seconds: float) -> Scenario:
    """Draw a scenario of the named kind; identical arguments give an identical scenario."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    if seconds < 2.0:
        raise ValueError(f"scenario too short: {seconds} s (need >= 2 s: 1.5 s of history plus a tick)")
    rng = np.random.default_rng([seed, SCENARIOS.index(name)])
    horizon = seconds + 8.0  # ground truth needs 6.4 s beyond the last frame
    v_des = float(rng.uniform(11.0, 15.0))
    v0 = float(rng.uniform(0.75, 1.0) * v_des)
    # Events happen at a fraction of the requested duration (never before the first 1.5 s of history).
    t_event = max(1.6, float(rng.uniform(0.3, 0.45)) * seconds)
    segments: tuple[Segment, ...] = (Segment(v_des * horizon + 250.0, 0.0),)
    sc_kwargs: dict[str, object] = {}
    actors: list[Actor] = []
    description = ""

    if name == "free_road":
        v0 = float(rng.uniform(0.55, 0.8) * v_des)
        description = "empty ego lane; ego accelerates to its desired speed and keeps it"
    elif name == "lead_vehicle_braking":
        gap = float(rng.uniform(18.0, 30.0))
        v_lead = v0 * float(rng.uniform(0.95, 1.05))
        decel = -float(rng.uniform(3.0, 5.5))
        actors.append(_vehicle(rng, Motion(gap + 4.5, v_lead, ((t_event, decel),)), 0.0, name="lead vehicle"))
        description = f"lead vehicle {gap:.0f} m ahead brakes at {t_event:.1f} s with {decel:.1f} m/s^2 to a stop"
    elif name == "pedestrian_crossing":
        # Crosswalk placed so the ego reaches it a little after the pedestrian starts walking.
        cw = v0 * (t_event + float(rng.uniform(1.5, 3.0))) + 10.0
        walk_v = float(rng.uniform(1.1, 1.6))
        d_start = -LANE_WIDTH_M / 2 - 2.0
        d_end = 1.5 * LANE_WIDTH_M + 2.0

        def ped_d(t: float, t0: float = t_event, v: float = walk_v) -> float:
            return float(np.clip(d_start + max(0.0, t - t0) * v, d_start, d_end))

        color = (int(rng.integers(40, 220)), int(rng.integers(40, 220)), int(rng.integers(40, 220)))
        actors.append(
            Actor(
                "pedestrian",
                (0.45, 0.6, float(rng.uniform(1.6, 1.85))),
                color,
                Motion(cw + 2.0, 0.0),
                ped_d,
                np.pi / 2,
                "pedestrian",
            )
        )
        sc_kwargs["crosswalk_s_m"] = cw
        description = f"pedestrian starts crossing at {t_event:.1f} s on a crosswalk {cw:.0f} m ahead"
    elif name == "stationary_vehicle_nudge":
        s_obs = v0 * float(rng.uniform(2.5, 3.5)) + 25.0
        intrusion = float(rng.uniform(0.5, 0.9))  # how far the parked car's left side reaches into the ego lane
        width = 1.85
        d_obs = -LANE_WIDTH_M / 2 - width / 2 + intrusion
        actors.append(
            Actor("vehicle", (4.6, width, 1.5), _color(rng), Motion(s_obs, 0.0), _const(d_obs), 0.0, "parked vehicle")
        )
        description = f"parked vehicle {s_obs:.0f} m ahead blocks {intrusion:.1f} m of the ego lane"
    elif name in ("curve_left", "curve_right"):
        radius = float(rng.uniform(70.0, 140.0))
        sign = 1.0 if name == "curve_left" else -1.0
        straight = v0 * max(0.0, t_event - 1.0) + float(rng.uniform(20.0, 35.0))
        arc = radius * np.pi * 0.75
        segments = (Segment(straight, 0.0), Segment(arc, sign / radius), Segment(v_des * horizon + 250.0, 0.0))
        description = f"{'left' if sign > 0 else 'right'} curve of radius {radius:.0f} m after {straight:.0f} m"
    elif name == "red_light_stop_line":
        # Light turns yellow when the ego is far enough to stop comfortably (<= ~2.5 m/s^2).
        dist_at_yellow = v0 * v0 / (2 * float(rng.uniform(1.6, 2.4))) + 5.0
        s_stop = v0 * t_event + dist_at_yellow
        sc_kwargs["light"] = TrafficLight(s_stop, t_event, t_event + float(rng.uniform(2.0, 3.0)))
        sc_kwargs["crosswalk_s_m"] = s_stop + 1.0
        description = f"traffic light at {s_stop:.0f} m turns yellow at {t_event:.1f} s, then red"

    # Oncoming traffic in the other lane: visual clutter the planner must ignore.
    for _ in range(int(rng.integers(1, 4))):
        s_on = float(rng.uniform(60.0, 60.0 + v_des * seconds * 2.0))
        actors.append(_vehicle(rng, Motion(s_on, -float(rng.uniform(8.0, 14.0))), LANE_WIDTH_M, True, "oncoming"))

    road = Road(segments)
    scenario = Scenario(
        name=name,
        seed=seed,
        seconds=seconds,
        road=road,
        v_desired_mps=v_des,
        v0_mps=v0,
        actors=actors,
        props=_props(rng, road.s_max - 10.0),
        lighting=_lighting(rng),
        description=description,
    )
    for key, value in sc_kwargs.items():
        setattr(scenario, key, value)
    return scenario
