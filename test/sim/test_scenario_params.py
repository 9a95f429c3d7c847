"""Scene parameters: the axis table, the named distributions, overrides (API and `synth --set`), --describe."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.cli import main
from alpamayo_ros.sim import AXES, DISTRIBUTIONS, SCENARIOS, ParamError, build_from_params, build_scenario, describe
from alpamayo_ros.sim.distributions import (
    Bernoulli,
    Choice,
    Fixed,
    Integers,
    PerLighting,
    RadiusForDemand,
    Spec,
    Uniform,
)
from alpamayo_ros.sim.params import SceneParams, parse_overrides
from alpamayo_ros.sim.planner import LAT_ACC_MAX


def _within(spec: Spec, value: object, params: SceneParams) -> bool:
    """Whether a recorded value is one the spec can draw, given the scene's other recorded values."""
    if isinstance(spec, RadiusForDemand):
        if not (isinstance(value, float) and spec.r_lo <= value <= spec.r_hi):
            return False
        demand = params.ego_speed_mps**2 / value  # the lateral acceleration the bend asks at cruise speed
        lowest = spec.lo if value < spec.r_hi else 0.0  # clipped at the largest radius: any gentler demand
        highest = spec.hi if value > spec.r_lo else math.inf  # clipped at the smallest: any sharper one
        return lowest - 1e-9 <= demand <= highest + 1e-9
    if isinstance(spec, Uniform):
        return isinstance(value, float) and spec.lo <= value <= spec.hi
    if isinstance(spec, Integers):
        return isinstance(value, int) and spec.lo <= value <= spec.hi
    if isinstance(spec, Choice):
        return value in spec.options
    if isinstance(spec, Bernoulli):
        return isinstance(value, bool)
    if isinstance(spec, Fixed):
        return value == spec.value
    return _within(dict(spec.specs)[params.lighting], value, params)


def test_every_axis_is_documented_and_its_ranges_respect_its_limits() -> None:
    assert [f.name for f in fields(SceneParams)][4:] == [a.name for a in AXES]
    for axis in AXES:
        assert axis.doc and set(axis.specs) == set(DISTRIBUTIONS), axis.name
        for spec in axis.specs.values():
            inner = [s for _, s in spec.specs] if isinstance(spec, PerLighting) else [spec]
            for s in inner:
                if isinstance(s, RadiusForDemand):
                    assert axis.limits[0] <= s.r_lo <= s.r_hi <= axis.limits[1], axis.name  # type: ignore[operator]
                    assert 0.0 < s.lo <= s.hi, axis.name
                elif isinstance(s, Uniform | Integers):
                    assert axis.limits[0] <= s.lo <= s.hi <= axis.limits[1], axis.name  # type: ignore[operator]
                elif isinstance(s, Choice):
                    assert set(s.options) <= set(axis.limits), axis.name
                elif isinstance(s, Fixed) and not isinstance(s.value, bool):
                    v = s.value
                    assert v in axis.limits if isinstance(v, str) else axis.limits[0] <= v <= axis.limits[1]  # type: ignore[operator]


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_each_distribution_samples_every_used_axis_from_its_range(distribution: str) -> None:
    for name in SCENARIOS:
        for seed in (0, 1):
            params = build_scenario(name, seed, 12.0, distribution).params
            assert params is not None and params.distribution == distribution
            for axis in AXES:
                if params.used(axis.name):
                    value = getattr(params, axis.name)
                    assert _within(axis.spec(distribution), value, params), (name, axis.name, value)


def test_shifted_sits_at_the_edges() -> None:
    """The shifted set is what its name says: night, fast, the other kerb, two lanes, heavy traffic."""
    p = build_scenario("pedestrian_crossing", 3, 12.0, "shifted").params
    assert p is not None
    assert p.lighting == "night" and p.ego_speed_mps >= 17.0 and p.pedestrian_kerb == "left"
    assert p.lanes_each_way == 2 and p.oncoming_count >= 5 and p.parked_count >= 4


def test_wide_reaches_every_value_the_shifted_set_draws() -> None:
    """A driver trained on `wide` has seen each shifted edge on its own; the shifted set tests them all at once."""
    for name in SCENARIOS:
        for seed in range(6):
            params = build_scenario(name, seed, 12.0, "shifted").params
            assert params is not None
            for axis in AXES:
                if params.used(axis.name):
                    value = getattr(params, axis.name)
                    assert _within(axis.spec("wide"), value, params), (name, seed, axis.name, value)


def test_bends_that_ask_to_slow_down_come_at_every_speed() -> None:
    """`bends` draws a bend by the lateral acceleration it asks at cruise speed: most ask more than the planner
    allows, at low cruise speeds as at high ones, where `wide` (radius drawn on its own) has few and only fast."""

    def demands(distribution: str) -> list[tuple[float, float]]:
        out = []
        for name in SCENARIOS:
            for seed in range(30):
                p = build_scenario(name, seed, 12.0, distribution).params
                assert p is not None
                if p.used("bend_radius_m"):  # a curve kind, or an event on a bend
                    out.append((p.ego_speed_mps, p.ego_speed_mps**2 / p.bend_radius_m))
        return out

    bends, wide = demands("bends"), demands("wide")
    asking = [v for v, a in bends if a > LAT_ACC_MAX]
    assert len(asking) >= 0.6 * len(bends)
    assert min(asking) < 12.0 and max(asking) > 19.0
    sharp = sum(a > 4.8 for _, a in bends)  # the demand of the shifted set's bends (17-21 m/s, 50-60 m)
    assert sharp >= 0.15 * len(bends) and sharp > 4 * sum(a > 4.8 for _, a in wide)


def test_a_bend_drawn_by_its_demand_follows_an_overridden_speed() -> None:
    """The demand is drawn, the radius follows the cruise speed: overriding the speed keeps the demand."""
    slow = build_scenario("curve_left", 3, 12.0, "bends", overrides={"ego_speed": 12.0}).params
    fast = build_scenario("curve_left", 3, 12.0, "bends", overrides={"ego_speed": 18.0}).params
    assert slow is not None and fast is not None
    assert 50.0 < slow.bend_radius_m < fast.bend_radius_m < 200.0
    assert 12.0**2 / slow.bend_radius_m == pytest.approx(18.0**2 / fast.bend_radius_m)
    fixed = build_scenario("curve_left", 3, 12.0, "bends", overrides={"ego_speed": 18.0, "bend_radius": 90.0})
    assert fixed.params is not None and fixed.params.bend_radius_m == 90.0


def test_a_repeated_choice_shows_its_weight_in_the_table() -> None:
    assert Choice(("noon", "night", "night")).text() == "noon | night (x2)"


def test_an_override_replaces_its_axis_and_leaves_the_others_drawn_as_before() -> None:
    base = build_scenario("lead_vehicle_braking", 4, 12.0)
    night = build_scenario("lead_vehicle_braking", 4, 12.0, overrides={"lighting": "night", "lanes_each_way": 2})
    assert base.params is not None and night.params is not None
    assert night.params.lighting == "night" and night.params.lanes_each_way == 2
    assert replace(night.params, lighting=base.params.lighting, lanes_each_way=1) == base.params
    assert night.lighting.night and not base.lighting.night
    assert [a.size_m for a in night.actors] == [a.size_m for a in base.actors]


def test_the_recorded_parameters_rebuild_the_same_scene() -> None:
    sc = build_scenario("red_light_stop_line", 9, 12.0, "wide")
    assert sc.params is not None
    again = build_from_params(sc.params)
    assert again.params == sc.params and again.light == sc.light and again.description == sc.description
    assert [(a.size_m, a.color, a.motion) for a in again.actors] == [(a.size_m, a.color, a.motion) for a in sc.actors]
    assert again.props == sc.props and np.array_equal(again.road.x, sc.road.x)


def test_overrides_are_read_with_or_without_unit_suffix_and_refused_in_one_line() -> None:
    assert parse_overrides(["ego_speed=19", "lighting=night", "lanes_each_way=2", "late_yellow=true"]) == {
        "ego_speed_mps": 19.0,
        "lighting": "night",
        "lanes_each_way": 2,
        "late_yellow": True,
    }
    with pytest.raises(ParamError, match=r"unknown scene parameter 'warp'; known: ego_speed_mps, "):
        parse_overrides(["warp=9"])
    with pytest.raises(ParamError, match=r"bad value '99' for ego_speed_mps: allowed 3\.\.30 m/s"):
        parse_overrides(["ego_speed=99"])
    with pytest.raises(ParamError, match=r"bad value 'moon' for lighting: allowed one of noon, overcast, dusk, night"):
        parse_overrides(["lighting=moon"])
    with pytest.raises(ParamError, match=r"bad value '1.5' for lanes_each_way"):
        parse_overrides(["lanes_each_way=1.5"])
    with pytest.raises(ParamError, match="expects key=value"):
        parse_overrides(["lighting"])
    with pytest.raises(ParamError, match="unknown distribution 'odd'"):
        build_scenario("free_road", 0, 5.0, "odd")
    with pytest.raises(ParamError, match=r"bad value '-4\.0' for lane_width_m"):
        build_scenario("free_road", 0, 5.0, overrides={"lane_width_m": -4.0})


def test_describe_lists_the_axes_the_kind_uses_with_units() -> None:
    ped = build_scenario("pedestrian_crossing", 2, 10.0, overrides={"pedestrian_kerb": "left"}).params
    free = build_scenario("free_road", 2, 10.0).params
    assert ped is not None and free is not None
    lines = describe(ped)
    assert "pedestrian_kerb = left" in lines and "lighting = " + ped.lighting in lines
    assert f"pedestrian_speed_mps = {ped.pedestrian_speed_mps:.4g} m/s" in lines
    assert not any(line.startswith("lead_gap_m") for line in lines)
    free_lines = describe(free)
    assert not any(line.startswith(("pedestrian_", "lead_", "initial_speed_ratio")) for line in free_lines)
    assert any(line.startswith("free_road_speed_ratio = ") for line in free_lines)


def test_synth_describe_prints_parameters_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["synth", "--scenario", "curve_left", "--seed", "5", "--distribution", "shifted", "--set", "fog_scale=0.5"]
    assert main([*argv, "--describe"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "distribution = shifted" in out and "fog_scale = 0.5 x" in out and "lighting = night" in out
    assert any(line.startswith("bend_radius_m = ") and line.endswith(" m") for line in out)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--set", "kerb=left"], "unknown scene parameter 'kerb'"),
        (["--set", "pedestrian_kerb=middle"], "bad value 'middle' for pedestrian_kerb: allowed one of right, left"),
        (["--set", "noise_std=-1"], "bad value '-1' for noise_std: allowed 0..40 8-bit levels"),
    ],
)
def test_synth_refuses_bad_parameters_with_exit_2(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", "--out", str(tmp_path / "bag"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err
    assert not (tmp_path / "bag").exists()


def test_synth_records_the_parameters_in_the_sidecar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bag"
    argv = ["synth", "--out", str(out), "--seconds", "2", "--width", "16", "--height", "16", "--quiet"]
    assert main([*argv, "--distribution", "wide", "--set", "lighting=dusk"]) == 0
    sidecar = json.loads((out / "scenario.json").read_text())
    assert sidecar["distribution"] == "wide" and sidecar["params"]["lighting"] == "dusk"
    assert set(sidecar["params"]) == {axis.name for axis in AXES}


def test_the_docs_show_the_axis_table_as_the_code_defines_it() -> None:
    from alpamayo_ros.sim.distributions import markdown_table

    doc = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
    assert markdown_table() in doc.read_text(), "regenerate the table in docs/scenarios.md from markdown_table()"
