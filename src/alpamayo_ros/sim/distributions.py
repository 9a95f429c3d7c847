"""The scenario axes and their named distributions: the one table every scene parameter is drawn from.

Each Axis names one documented scene parameter (SceneParams in params.py has one field per axis), its unit, the
hard limits a ``--set`` override must respect, and how each named distribution samples it:

- ``default``: the seven scenario kinds exactly as the original generator drew them (same ranges, same random
  stream), so the shipped driver's in-distribution figures stay valid; new axes sit at their original fixed value.
- ``wide``: every axis randomised over a broad range, for retraining a driver that generalises. Its ranges reach
  the shifted values, so a driver trained on it has seen each edge, though rarely all of them at once.
- ``shifted``: every axis at the far edge of the wide range, all at once: night, fast, the other kerb, sharp bends,
  heavy traffic, dense scenery, a noisy over-exposed camera. For measuring generalisation.
- ``composed``: default look and speeds, but events on bends, two events in one episode (a pedestrian crossing
  after a lead vehicle, a parked car or on a curve) and parked cars to ignore, for measuring composition.
- ``bends``: default look and traffic, wide's cruise speeds, and bends (the curve kinds, and under two thirds of the
  other events) drawn by the lateral acceleration they ask at cruise speed (RadiusForDemand): about three in four
  ask more than the planner's 2 m/s^2, so the ego slows down for them. For training: in ``default`` and ``wide`` a
  bend the ego slows down for is rare, and in the day look of ``default`` there is none.

``legacy`` axes were drawn by the original generator: they draw from the scene's main random stream, in the
original order (scenes.py), which is what keeps ``default`` frame-for-frame identical. New axes draw from a second
stream, so adding one never moves the legacy draws.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.sim.world import SCENARIOS

Value = float | int | str | bool
DISTRIBUTIONS: tuple[str, ...] = ("default", "wide", "shifted", "composed", "bends")
LIGHTINGS: tuple[str, ...] = ("noon", "overcast", "dusk", "night")


@dataclass(frozen=True)
class Uniform:
    """Uniform on [lo, hi] (one draw)."""

    lo: float
    hi: float

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        return float(rng.uniform(self.lo, self.hi))

    def text(self) -> str:
        return f"{self.lo:g}..{self.hi:g}"


@dataclass(frozen=True)
class Integers:
    """Uniform integer on [lo, hi], both included (one draw)."""

    lo: int
    hi: int

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        return int(rng.integers(self.lo, self.hi + 1))

    def text(self) -> str:
        return f"{self.lo}..{self.hi}"


@dataclass(frozen=True)
class Choice:
    """One of the options, equally likely (repeat an option to weight it)."""

    options: tuple[str, ...]

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        return str(rng.choice(list(self.options)))

    def text(self) -> str:
        counts = Counter(self.options)
        return " | ".join(option if n == 1 else f"{option} (x{n})" for option, n in counts.items())


@dataclass(frozen=True)
class Bernoulli:
    """True with probability p (one draw)."""

    p: float

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        return bool(rng.uniform() < self.p)

    def text(self) -> str:
        return f"true with p = {self.p:g}"


@dataclass(frozen=True)
class Fixed:
    """Always this value (no draw)."""

    value: Value

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        return self.value

    def text(self) -> str:
        return str(self.value).lower() if isinstance(self.value, bool) else f"{self.value}"


@dataclass(frozen=True)
class PerLighting:
    """A different spec per lighting (the sun is low at dusk); lighting is drawn before this axis."""

    specs: tuple[tuple[str, Uniform], ...]

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        return dict(self.specs)[str(drawn["lighting"])].sample(rng, drawn)

    def text(self) -> str:
        return "; ".join(f"{name}: {spec.text()}" for name, spec in self.specs)


@dataclass(frozen=True)
class RadiusForDemand:
    """A bend radius (m) drawn by the lateral acceleration the bend asks at the ego's cruise speed: demand a ~ U(lo,
    hi) m/s^2, radius v^2 / a kept within [r_lo, r_hi] (one draw; ego_speed_mps is drawn before this axis).

    Why: a radius drawn on its own asks little of a slow ego and much of a fast one, so the bends that ask to slow
    down (a above the planner's LAT_ACC_MAX, 2 m/s^2) are few and all at the top speeds. Drawing the demand puts
    them at every speed that can reach it within the radius limits.
    """

    lo: float
    hi: float
    r_lo: float
    r_hi: float

    def sample(self, rng: np.random.Generator, drawn: Mapping[str, Value]) -> Value:
        cruise = float(drawn["ego_speed_mps"])
        demand = float(rng.uniform(self.lo, self.hi))
        return float(np.clip(cruise**2 / demand, self.r_lo, self.r_hi))

    def text(self) -> str:
        return f"ego_speed^2 / (U {self.lo:g}..{self.hi:g} m/s^2), within {self.r_lo:g}..{self.r_hi:g}"


Spec = Uniform | Integers | Choice | Bernoulli | Fixed | PerLighting | RadiusForDemand


@dataclass(frozen=True)
class Axis:
    """One scene parameter: its unit, what it means, its hard limits and its spec in every distribution.

    limits: (low, high) for numbers, the allowed values for choices; overrides outside them are refused.
    kinds: the scenario kinds that use it (empty: all); other kinds ignore it and --describe leaves it out.
    """

    name: str
    unit: str
    doc: str
    legacy: bool
    limits: tuple[float, float] | tuple[str, ...]
    specs: dict[str, Spec]
    kinds: tuple[str, ...] = ()

    def spec(self, distribution: str) -> Spec:
        return self.specs.get(distribution, self.specs["default"])


def _same(spec: Spec, **others: Spec) -> dict[str, Spec]:
    """default's spec, reused by every distribution not named in others."""
    return {name: others.get(name, spec) for name in DISTRIBUTIONS}


_LEAD = ("lead_vehicle_braking",)
_PED = ("pedestrian_crossing",)
_NUDGE = ("stationary_vehicle_nudge",)
_CURVES = ("curve_left", "curve_right")
_LIGHT = ("red_light_stop_line",)
_EVENT_KINDS = (*_LEAD, *_PED, *_NUDGE, *_CURVES, *_LIGHT)
# Kinds that may carry a second event (a pedestrian crossing later) or a bend under their event.
SECOND_EVENT_KINDS = ("lead_vehicle_braking", "stationary_vehicle_nudge", "curve_left", "curve_right")
BEND_KINDS = ("free_road", "lead_vehicle_braking", "pedestrian_crossing", "stationary_vehicle_nudge", *_LIGHT)
_DAY_SUN = Uniform(0.3, 1.2)
_LOW_SUN = Uniform(0.05, 0.25)
# Night is the hardest lighting to read at 64x128 px and the shifted set is all night: wide draws it twice as often.
_WIDE_LIGHTINGS = ("noon", "overcast", "dusk", "night", "night")
_WIDE_SPEED = Uniform(8.0, 21.0)
_WIDE_START = Uniform(0.6, 1.0)  # the ego's speed at t = 0, x its cruise speed
_SUN = PerLighting((("noon", _DAY_SUN), ("overcast", _DAY_SUN), ("dusk", _LOW_SUN), ("night", _DAY_SUN)))

# Legacy axes first, in the original generator's draw order; then the new axes (their own stream), in table order.
AXES: tuple[Axis, ...] = (
    Axis("ego_speed_mps", "m/s", "the ego's desired (cruise) speed", True, (3.0, 30.0),
         _same(Uniform(11.0, 15.0), wide=_WIDE_SPEED, shifted=Uniform(17.0, 21.0), bends=_WIDE_SPEED)),
    Axis("initial_speed_ratio", "x desired speed", "the ego's speed at t = 0", True, (0.0, 1.2),
         _same(Uniform(0.75, 1.0), wide=_WIDE_START, bends=_WIDE_START), _EVENT_KINDS),
    Axis("event_time_ratio", "x duration", "when the event starts, as a fraction of the episode (at least 1.6 s)",
         True, (0.05, 0.9), _same(Uniform(0.3, 0.45), wide=Uniform(0.2, 0.6))),
    Axis("free_road_speed_ratio", "x desired speed", "the ego's speed at t = 0 on the free road (it speeds up)",
         True, (0.0, 1.2), _same(Uniform(0.55, 0.8), wide=Uniform(0.3, 0.9)), ("free_road",)),
    Axis("lead_gap_m", "m", "gap to the lead vehicle at t = 0", True, (5.0, 80.0),
         _same(Uniform(18.0, 30.0), wide=Uniform(10.0, 40.0), shifted=Uniform(10.0, 14.0)), _LEAD),
    Axis("lead_speed_ratio", "x ego speed", "the lead vehicle's speed before it brakes", True, (0.3, 1.5),
         _same(Uniform(0.95, 1.05), wide=Uniform(0.8, 1.1)), _LEAD),
    Axis("lead_decel_mps2", "m/s^2", "the lead vehicle's braking deceleration", True, (0.5, 9.0),
         _same(Uniform(3.0, 5.5), wide=Uniform(2.0, 7.0), shifted=Uniform(5.5, 7.0)), _LEAD),
    Axis("crosswalk_margin_s", "s", "how long after the pedestrian steps out the ego would reach the crosswalk", True,
         (0.0, 10.0), _same(Uniform(1.5, 3.0), wide=Uniform(1.0, 4.0), shifted=Uniform(1.0, 1.5)), _PED),
    Axis("pedestrian_speed_mps", "m/s", "the pedestrian's walking speed", True, (0.3, 4.0),
         _same(Uniform(1.1, 1.6), wide=Uniform(0.7, 2.5), shifted=Uniform(2.0, 2.5)), (*_PED, *SECOND_EVENT_KINDS)),
    Axis("pedestrian_height_m", "m", "the pedestrian's height (about 1.1 m: a child)", True, (0.9, 2.1),
         _same(Uniform(1.6, 1.85), wide=Uniform(1.1, 1.95), shifted=Uniform(1.1, 1.3)),
         (*_PED, *SECOND_EVENT_KINDS)),
    Axis("parked_time_s", "s", "the parked vehicle sits 25 m plus this many seconds of ego travel ahead", True,
         (0.5, 10.0), _same(Uniform(2.5, 3.5), wide=Uniform(1.5, 3.5), shifted=Uniform(2.0, 2.5)), _NUDGE),
    Axis("parked_intrusion_m", "m", "how far the parked vehicle reaches into the ego lane", True, (0.1, 1.4),
         _same(Uniform(0.5, 0.9), wide=Uniform(0.3, 0.9), shifted=Uniform(0.8, 0.9)), _NUDGE),
    Axis("bend_radius_m", "m", "radius of the bend (curve kinds, and any event on a bend)", True, (25.0, 500.0),
         _same(Uniform(70.0, 140.0), wide=Uniform(50.0, 200.0), shifted=Uniform(50.0, 60.0),
               bends=RadiusForDemand(1.0, 9.0, 50.0, 200.0))),
    Axis("bend_lead_in_m", "m", "curve kinds: straight road beyond the ego's position 1 s before the event", True,
         (0.0, 100.0), _same(Uniform(20.0, 35.0), wide=Uniform(10.0, 50.0)), _CURVES),
    Axis("stop_decel_mps2", "m/s^2", "deceleration the stop line is placed for, from the ego's speed at yellow",
         True, (0.8, 4.0), _same(Uniform(1.6, 2.4), wide=Uniform(1.4, 3.0), shifted=Uniform(2.4, 3.0)), _LIGHT),
    Axis("yellow_duration_s", "s", "how long the light stays yellow before red", True, (1.0, 6.0),
         _same(Uniform(2.0, 3.0), wide=Uniform(2.0, 4.0), shifted=Uniform(2.0, 2.5)), _LIGHT),
    Axis("oncoming_count", "vehicles", "oncoming cars in the other direction (clutter to ignore)", True, (0, 12),
         _same(Integers(1, 3), wide=Integers(0, 7), shifted=Integers(5, 7))),
    Axis("lighting", "", "time of day; night: dark sky, headlights, lit lamps and signals", True, LIGHTINGS,
         _same(Choice(("noon", "overcast", "dusk")), wide=Choice(_WIDE_LIGHTINGS), shifted=Fixed("night"))),
    Axis("sun_azimuth_rad", "rad", "direction towards the sun (or the moon), world frame, from +x", True,
         (-math.pi, math.pi), _same(Uniform(-math.pi, math.pi))),
    Axis("sun_elevation_rad", "rad", "height of the sun (or the moon) above the horizon", True, (0.0, 1.5),
         _same(_SUN)),
    Axis("ground_brightness", "x", "brightness of the ground and shading, times the lighting's own", True,
         (0.3, 1.5), _same(Uniform(0.9, 1.1))),
    Axis("fog_scale", "x", "distance to 63 % fog, times the lighting's own (noon 120 m ... night 60 m)", True,
         (0.2, 3.0), _same(Uniform(0.8, 1.2), wide=Uniform(0.5, 1.5), shifted=Uniform(0.5, 0.6))),
    # New axes (second stream).
    Axis("lanes_each_way", "lanes", "lanes per direction (the ego keeps the rightmost)", False, (1, 2),
         _same(Fixed(1), wide=Integers(1, 2), shifted=Fixed(2))),
    Axis("lane_width_m", "m", "width of every lane", False, (2.7, 4.2),
         _same(Fixed(3.5), wide=Uniform(3.0, 3.9), shifted=Uniform(3.0, 3.1))),
    Axis("bend", "", "a bend under the event (curve kinds bend by their name)", False, ("none", "left", "right"),
         _same(Fixed("none"), wide=Choice(("none", "none", "left", "right")), composed=Choice(("left", "right")),
               bends=Choice(("none", "left", "right"))),
         BEND_KINDS),
    Axis("event_bend_lead_m", "m", "with a bend: it starts this far before the event's place", False, (0.0, 80.0),
         _same(Uniform(10.0, 30.0)), BEND_KINDS),
    Axis("second_event", "", "a pedestrian crossing after the first event", False, ("none", "pedestrian"),
         _same(Fixed("none"), wide=Choice(("none", "pedestrian")), composed=Fixed("pedestrian")),
         SECOND_EVENT_KINDS),
    Axis("second_event_distance_m", "m", "the second event's crosswalk lies this far beyond the first event", False,
         (15.0, 150.0), _same(Uniform(25.0, 45.0)), SECOND_EVENT_KINDS),
    Axis("second_event_delay_s", "s", "the pedestrian steps out this long after the lead vehicle passes (or the "
         "ego would reach the crosswalk this long after they step out)", False, (0.0, 6.0),
         _same(Uniform(0.5, 1.5), composed=Uniform(0.5, 2.0)), SECOND_EVENT_KINDS),
    Axis("pedestrian_kerb", "", "which kerb the pedestrian steps off (seen from the ego)", False, ("right", "left"),
         _same(Fixed("right"), wide=Choice(("right", "left")), shifted=Fixed("left")),
         (*_PED, *SECOND_EVENT_KINDS)),
    Axis("pedestrian_clothing", "", "clothing colours: any, dark (hard at night) or bright", False,
         ("any", "dark", "bright"),
         _same(Fixed("any"), wide=Choice(("any", "dark", "bright")), shifted=Fixed("dark")),
         (*_PED, *SECOND_EVENT_KINDS)),
    Axis("late_yellow", "", "the light turns yellow too late to stop: the ego drives through on yellow", False,
         ("false", "true"), _same(Bernoulli(0.15)), _LIGHT),
    Axis("parked_count", "vehicles", "cars parked on the right shoulder, clear of the lane (clutter)", False, (0, 12),
         _same(Fixed(0), wide=Integers(0, 6), shifted=Integers(4, 6), composed=Integers(0, 2))),
    Axis("traffic_speed_scale", "x", "speed of oncoming cars, times their 8..14 m/s", False, (0.3, 2.5),
         _same(Fixed(1.0), wide=Uniform(0.7, 1.6), shifted=Uniform(1.4, 1.6))),
    Axis("vehicle_size_scale", "x", "size of every other vehicle, times a car's (1.3: vans)", False, (0.6, 1.6),
         _same(Fixed(1.0), wide=Uniform(0.9, 1.35), shifted=Uniform(1.25, 1.35))),
    Axis("vehicle_colors", "", "vehicle paint: a palette of common car colours, or any colour", False,
         ("palette", "any"), _same(Fixed("palette"), wide=Choice(("palette", "any")), shifted=Fixed("any"))),
    Axis("scenery_density", "x", "roadside trees, buildings and posts, times the default spacing's density", False,
         (0.1, 4.0), _same(Fixed(1.0), wide=Uniform(0.3, 2.6), shifted=Uniform(2.2, 2.6))),
    Axis("exposure_gain", "x", "camera exposure: every pixel times this", False, (0.3, 2.5),
         _same(Fixed(1.0), wide=Uniform(0.7, 1.4), shifted=Uniform(1.3, 1.4))),
    Axis("noise_std", "8-bit levels", "camera sensor noise: Gaussian, per pixel and channel", False, (0.0, 40.0),
         _same(Fixed(0.0), wide=Uniform(0.0, 9.0), shifted=Uniform(7.0, 9.0))),
)  # fmt: skip
AXIS_BY_NAME: dict[str, Axis] = {axis.name: axis for axis in AXES}


def markdown_table() -> str:
    """The axis table as docs/scenarios.md shows it (a test keeps the two identical)."""
    head = ["axis", "unit", "meaning", *DISTRIBUTIONS, "limits (--set)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for axis in AXES:
        limits = axis.limits
        allowed = ", ".join(str(v) for v in limits) if isinstance(limits[0], str) else f"{limits[0]:g}..{limits[1]:g}"
        others = [kind for kind in SCENARIOS if kind not in axis.kinds]
        scope = f" ({', '.join(axis.kinds)} only)" if len(others) > 2 else f" (not {', '.join(others)})"
        scope = "" if not axis.kinds else scope
        cells = [f"`{axis.name}`", axis.unit, axis.doc + scope, *(axis.spec(d).text() for d in DISTRIBUTIONS), allowed]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
