"""What a scenario is made of: the road, the other road users, the light, the scene dressing and the look.

scenes.py builds these from the scene parameters (params.py). Everything dynamic is a pure function of time so the
renderer, the planner and the ground truth agree by construction. Actors live in Frenet coordinates of the road (see
road.py); boxes are (length, width, height) in metres, colours RGB 0..255.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from alpamayo_ros.sim.road import LANE_WIDTH_M, Road

if TYPE_CHECKING:
    from alpamayo_ros.sim.params import SceneParams

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
    night: bool = False  # headlights and tail lamps lit, the ego's headlights light the road ahead


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
    lane_width_m: float = LANE_WIDTH_M
    lanes_each_way: int = 1  # the ego drives in the rightmost; the oncoming lanes lie to the left of the centre line
    exposure_gain: float = 1.0  # every rendered pixel times this (camera exposure)
    noise_std: float = 0.0  # Gaussian sensor noise, 8-bit levels
    params: SceneParams | None = None  # what it was built from (None: assembled by hand)

    @property
    def centre_line_d(self) -> float:
        """Frenet d (m) of the line between the two directions."""
        return (self.lanes_each_way - 0.5) * self.lane_width_m

    @property
    def left_edge_d(self) -> float:
        """Frenet d (m) of the road's left edge (beyond the oncoming lanes)."""
        return (2 * self.lanes_each_way - 0.5) * self.lane_width_m
