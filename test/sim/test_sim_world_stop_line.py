"""The traffic light is placed from the ego's planned motion: every stop episode stops before the line, and driving
through on yellow happens exactly in the episodes the distribution marks as late yellows, as often as it says."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Longitudinal
from alpamayo_ros.sim import build_scenario, generate
from alpamayo_ros.sim.distributions import AXIS_BY_NAME, Bernoulli
from alpamayo_ros.sim.planner import EGO_FRONT_M, SIM_DT, simulate
from alpamayo_ros.sim.scenes import STOP_LINE_BEHIND_M
from alpamayo_ros.sim.world import Scenario


def _crossing_time(scenario: Scenario) -> float:
    """When the ego's front bumper first passes the stop line (inf: never, within the simulated track)."""
    assert scenario.light is not None
    track = simulate(scenario)
    beyond = np.nonzero(track.s + EGO_FRONT_M > scenario.light.s_stop_m)[0]
    return float(track.t[beyond[0]]) if beyond.size else math.inf


def _outcomes(distribution: str, seeds: range) -> list[tuple[bool, float, float, float]]:
    """(late_yellow, crossing time, yellow time, red time) per seed of the red-light kind."""
    out = []
    for seed in seeds:
        sc = build_scenario("red_light_stop_line", seed, 20.0, distribution)
        assert sc.light is not None and sc.params is not None
        out.append((sc.params.late_yellow, _crossing_time(sc), sc.light.t_yellow_s, sc.light.t_red_s))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["default", "shifted"])
def test_stop_episodes_stop_and_late_yellows_are_the_only_drive_throughs(distribution: str) -> None:
    """40 seeds (shifted: the ego at 17..21 m/s, where the old constant-speed placement failed most)."""
    outcomes = _outcomes(distribution, range(1000, 1040))
    late = [o for o in outcomes if o[0]]
    for is_late, crossed, yellow, red in outcomes:
        if is_late:
            assert yellow <= crossed < red, (crossed, yellow, red)  # through on yellow, never on red
        else:
            assert crossed == math.inf  # stopped before the line (the light stays red)
    # The share of stop episodes is what the distribution says (a binomial 99.9 % interval for 40 draws).
    spec = AXIS_BY_NAME["late_yellow"].spec(distribution)
    assert isinstance(spec, Bernoulli)
    sd = math.sqrt(40 * spec.p * (1 - spec.p))
    assert abs(len(late) - 40 * spec.p) <= 3.3 * sd, len(late)
    assert 0 < len(late) < 40


@pytest.mark.parametrize("seed", [1003, 1017])
def test_the_line_is_placed_from_the_simulated_speed_at_yellow(seed: int) -> None:
    """The ego speeds up before the yellow (the old placement assumed its initial speed); the line leaves exactly
    the comfortable stop the parameters ask for, from where the simulated ego really is at the yellow."""
    sc = build_scenario("red_light_stop_line", seed, 20.0, overrides={"late_yellow": False, "ego_speed": 19.0})
    assert sc.light is not None and sc.params is not None
    track = simulate(sc)
    i = round(sc.light.t_yellow_s / SIM_DT)
    v_yellow, s_yellow = float(track.v[i]), float(track.s[i])
    assert v_yellow > sc.v0_mps + 0.5
    decel = v_yellow**2 / (2 * (sc.light.s_stop_m - STOP_LINE_BEHIND_M - s_yellow))
    assert decel == pytest.approx(sc.params.stop_decel_mps2, rel=1e-6)
    assert _crossing_time(sc) == math.inf


def test_a_late_yellow_is_labelled_as_one() -> None:
    """Forced late yellow: the label names the yellow light, the short distance (as the planner measures it) and
    the decision to go through; it never says stop."""
    gen = generate("red_light_stop_line", 5, 12.0, 32, 18, overrides={"late_yellow": True})
    light = gen.scenario.light
    assert light is not None and "too late to stop" in gen.scenario.description
    tr = gen.track
    cited = 0
    for k, tick in enumerate(gen.ticks(render=False)):
        assert tick.label.longitudinal != Longitudinal.STOP, tick.label.text
        match = re.search(r"turned yellow with the stop line only (\d+) m away", tick.label.text)
        if match:
            cited += 1
            i = k * 10
            assert light.state(float(tr.t[i])) == "yellow"
            assert int(match.group(1)) == round(light.s_stop_m - (float(tr.s[i]) + EGO_FRONT_M))
            assert "I go through on yellow." in tick.label.text
    assert cited >= 3
