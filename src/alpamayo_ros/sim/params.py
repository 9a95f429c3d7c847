"""SceneParams: every parameter a scenario is built from, how overrides are read, and how a scene is described.

The fields mirror distributions.AXES one to one (checked at import); their units, meanings, limits and ranges per
distribution live in that table only. Draws hands the scene builder (scenes.py) each parameter in turn: sampled
from the distribution's spec, then replaced by an override if there is one (the draw still happens, so an override
leaves the other parameters' draws where they were).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from alpamayo_ros.sim.distributions import (
    AXES,
    AXIS_BY_NAME,
    DISTRIBUTIONS,
    Axis,
    Bernoulli,
    Choice,
    Fixed,
    Integers,
    RadiusForDemand,
    Uniform,
    Value,
)

_UNIT_SUFFIXES = ("_mps2", "_mps", "_m", "_s", "_rad")


class ParamError(ValueError):
    """A scene parameter override or distribution that cannot be used; the message is one line."""


@dataclass(frozen=True)
class SceneParams:
    """The parameters of one scenario (units and ranges: distributions.AXES; axes a kind does not use keep their
    default value and are left out of describe())."""

    kind: str
    seed: int
    seconds: float
    distribution: str
    ego_speed_mps: float
    initial_speed_ratio: float
    event_time_ratio: float
    free_road_speed_ratio: float
    lead_gap_m: float
    lead_speed_ratio: float
    lead_decel_mps2: float
    crosswalk_margin_s: float
    pedestrian_speed_mps: float
    pedestrian_height_m: float
    parked_time_s: float
    parked_intrusion_m: float
    bend_radius_m: float
    bend_lead_in_m: float
    stop_decel_mps2: float
    yellow_duration_s: float
    oncoming_count: int
    lighting: str
    sun_azimuth_rad: float
    sun_elevation_rad: float
    ground_brightness: float
    fog_scale: float
    lanes_each_way: int
    lane_width_m: float
    bend: str
    event_bend_lead_m: float
    second_event: str
    second_event_distance_m: float
    second_event_delay_s: float
    pedestrian_kerb: str
    pedestrian_clothing: str
    late_yellow: bool
    parked_count: int
    traffic_speed_scale: float
    vehicle_size_scale: float
    vehicle_colors: str
    scenery_density: float
    exposure_gain: float
    noise_std: float

    def axis_values(self) -> dict[str, Value]:
        """The axis fields only (not kind, seed, seconds, distribution)."""
        return {axis.name: getattr(self, axis.name) for axis in AXES}

    def used(self, name: str) -> bool:
        """Whether this scenario's content depends on the axis (its kind and its own choices)."""
        axis = AXIS_BY_NAME[name]
        if axis.kinds and self.kind not in axis.kinds:
            return False
        pedestrian = self.kind == "pedestrian_crossing" or self.second_event == "pedestrian"
        if name.startswith(("pedestrian_", "second_event_")):
            return pedestrian
        if name == "bend_radius_m":
            return self.kind in ("curve_left", "curve_right") or self.bend != "none"
        if name == "event_bend_lead_m":
            return self.bend != "none"
        return True


_FIELDS = tuple(f.name for f in fields(SceneParams))
assert _FIELDS[4:] == tuple(axis.name for axis in AXES), "SceneParams fields must follow distributions.AXES"


def _nominal(axis: Axis) -> Value:
    """The value an axis keeps when its scenario never draws it: default's fixed value, lower bound or first option."""
    spec = axis.spec("default")
    if isinstance(spec, Fixed):
        return spec.value
    if isinstance(spec, Uniform | Integers):
        return spec.lo
    if isinstance(spec, Choice):
        return spec.options[0]
    if isinstance(spec, Bernoulli):
        return False
    if isinstance(spec, RadiusForDemand):
        return spec.r_lo
    return spec.specs[0][1].lo


def axis_key(key: str) -> str:
    """The axis a --set key names: its field name, or the field name without its unit suffix (ego_speed)."""
    if key in AXIS_BY_NAME:
        return key
    for suffix in _UNIT_SUFFIXES:
        if key + suffix in AXIS_BY_NAME:
            return key + suffix
    raise ParamError(f"unknown scene parameter {key!r}; known: {', '.join(a.name for a in AXES)}")


def allowed(axis: Axis) -> str:
    """The allowed values of an axis, as an error message prints them."""
    if isinstance(axis.limits[0], str):
        return "one of " + ", ".join(str(v) for v in axis.limits)
    return f"{axis.limits[0]:g}..{axis.limits[1]:g} {axis.unit}".rstrip()


def parse_value(axis: Axis, text: str) -> Value:
    """Read one override value; raises ParamError naming the axis and its allowed values."""
    bad = ParamError(f"bad value {text!r} for {axis.name}: allowed {allowed(axis)}")
    limits = axis.limits
    if isinstance(limits[0], str):
        if text not in limits:
            raise bad
        return text == "true" if axis.name == "late_yellow" else text
    try:
        number = float(text)
    except ValueError:
        raise bad from None
    low, high = float(limits[0]), float(limits[1])
    if not (math.isfinite(number) and low <= number <= high):
        raise bad
    if isinstance(limits[0], int):
        if number != round(number):
            raise bad
        return round(number)
    return number


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Value]:
    """`key=value` strings (synth --set) -> {axis name: value}; one-line ParamError on anything unusable."""
    out: dict[str, Value] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"--set expects key=value, got {item!r}")
        axis = AXIS_BY_NAME[axis_key(key.strip())]
        out[axis.name] = parse_value(axis, text.strip())
    return out


def check_distribution(name: str) -> None:
    if name not in DISTRIBUTIONS:
        raise ParamError(f"unknown distribution {name!r}; choose one of {', '.join(DISTRIBUTIONS)}")


class Draws:
    """Hands out a scene's parameters in the order the builder asks for them.

    main: the scene's original random stream (legacy axes and per-actor details, in the original order); extra: a
    second stream for the new axes. Every parameter is drawn from its spec (even when overridden) and recorded.
    """

    def __init__(self, kind: str, kind_index: int, seed: int, distribution: str, overrides: dict[str, Value]) -> None:
        check_distribution(distribution)
        # The same checks as the command line's: a key may drop its unit suffix, a value must be within limits.
        checked: dict[str, Value] = {}
        for key, value in overrides.items():
            axis = AXIS_BY_NAME[axis_key(key)]
            checked[axis.name] = parse_value(axis, str(value).lower() if isinstance(value, bool) else str(value))
        self.main = np.random.default_rng([seed, kind_index])
        self.extra = np.random.default_rng([seed, kind_index, 15])
        self.kind = kind
        self.distribution = distribution
        self.overrides = checked
        self.values: dict[str, Value] = {}

    def _draw(self, name: str, rng: np.random.Generator) -> Value:
        axis = AXIS_BY_NAME[name]
        value = axis.spec(self.distribution).sample(rng, self.values)
        value = self.overrides.get(name, value)
        self.values[name] = value
        return value

    def legacy(self, name: str) -> float:
        """A numeric parameter from the main stream."""
        return float(self._draw(name, self.main))

    def new(self, name: str) -> float:
        """A numeric parameter from the second stream."""
        return float(self._draw(name, self.extra))

    def legacy_choice(self, name: str) -> str:
        return str(self._draw(name, self.main))

    def new_choice(self, name: str) -> str:
        return str(self._draw(name, self.extra))

    def new_flag(self, name: str) -> bool:
        return bool(self._draw(name, self.extra))

    def params(self, seed: int, seconds: float) -> SceneParams:
        """The recorded parameters; axes never asked for keep their nominal value (or their override)."""
        values: dict[str, Any] = {axis.name: self.overrides.get(axis.name, _nominal(axis)) for axis in AXES}
        values.update(self.values)
        return SceneParams(self.kind, seed, seconds, self.distribution, **values)


def describe(params: SceneParams) -> list[str]:
    """One line per parameter the scenario uses: name, value and unit (what synth --describe prints)."""
    lines = [
        f"kind = {params.kind}",
        f"seed = {params.seed}",
        f"seconds = {params.seconds:g} s",
        f"distribution = {params.distribution}",
    ]
    for axis in AXES:
        if not params.used(axis.name):
            continue
        value = getattr(params, axis.name)
        shown = str(value).lower() if isinstance(value, bool) else f"{value:.4g}" if isinstance(value, float) else value
        lines.append(f"{axis.name} = {shown} {axis.unit}".rstrip())
    return lines
