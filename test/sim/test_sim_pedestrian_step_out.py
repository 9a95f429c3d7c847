"""A pedestrian never steps out in front of an ego that could no longer stop: the step-out is timed against the ego's
planned motion (kept when the planner can yield, else earlier within the event's window, else behind the ego), and
the expert yields to every one in closed loop, also when it has rolled onto the crosswalk's edge."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from alpamayo_ros.sim import build_scenario
from alpamayo_ros.sim.closed_loop import ClosedLoopWorld, ExpertDriver, run_rollout
from alpamayo_ros.sim.distributions import Value
from alpamayo_ros.sim.dressing import crossing
from alpamayo_ros.sim.metrics import evaluate_rollout
from alpamayo_ros.sim.planner import EGO_FRONT_M, EGO_HALF_WIDTH_M, EGO_REAR_M, STOP_GAP_M, plan, simulate
from alpamayo_ros.sim.scenes import CROSSWALK_M, STEP_OUT_CLEARANCE_M
from alpamayo_ros.sim.world import Actor, Scenario

# Pedestrian-crossing scenes at 25 m/s whose nominal step-out no planner could yield to: at night (the pedestrian
# seen only in the low beams) the step-out moves earlier; by day, with the crosswalk 50 m ahead at the start, the
# pedestrian waits and crosses behind the ego.
FAST = {"ego_speed_mps": 25.0, "initial_speed_ratio": 1.0}
MOVED_EARLIER: dict[str, Value] = {**FAST, "lighting": "night", "crosswalk_margin_s": 0.5, "event_time_ratio": 0.3}
BEHIND: dict[str, Value] = {**FAST, "lighting": "noon", "crosswalk_margin_s": 0.0, "event_time_ratio": 0.05}
LAG_S = 0.3  # s: at 7 m/s, an ego 2 m behind or ahead of its plan in closed loop


def _pedestrian(scenario: Scenario) -> Actor:
    (actor,) = (a for a in scenario.actors if a.kind == "pedestrian")
    return actor


def _step_out_s(scenario: Scenario) -> float:
    """The step-out time the description states, checked against the pedestrian's motion (0.1 s resolution)."""
    match = re.search(r"(?:starts crossing|crosses) at (\d+\.\d) s", scenario.description)
    assert match, scenario.description
    t = float(match.group(1))
    ped = _pedestrian(scenario)
    assert ped.d_of_t(t - 0.06) == ped.d_of_t(0.0) != ped.d_of_t(t + 0.06)
    return t


def _exact_step_out_s(pedestrian: Actor) -> float:
    """When the pedestrian leaves the kerb (bisection on their motion, to 1 ms)."""
    lo, hi = 0.0, 120.0
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if pedestrian.d_of_t(mid) == pedestrian.d_of_t(0.0) else (lo, mid)
    return lo


def _nominal_s(scenario: Scenario) -> float:
    """A first-event pedestrian's nominal step-out: the event time."""
    assert scenario.params is not None
    return max(1.6, scenario.params.event_time_ratio * scenario.seconds)


def _closest_approach_m(scenario: Scenario, pedestrian: Actor) -> float:
    """How close (m) the planned ego's box comes to the pedestrian's: the least over time of the larger of the gaps
    along and across the road (Frenet coordinates; 0 when the boxes overlap)."""
    track = simulate(scenario)
    closest = math.inf
    for t, s, d in zip(track.t, track.s, track.d, strict=True):
        gap_s = max(
            pedestrian.motion.s0_m - pedestrian.size_m[0] / 2 - (s + EGO_FRONT_M),
            (s - EGO_REAR_M) - (pedestrian.motion.s0_m + pedestrian.size_m[0] / 2),
            0.0,
        )
        gap_d = max(abs(pedestrian.d_of_t(float(t)) - d) - EGO_HALF_WIDTH_M - pedestrian.size_m[1] / 2, 0.0)
        closest = min(closest, max(gap_s, gap_d))
    return closest


def _stepping_out_at(scenario: Scenario, t_start: float) -> Scenario:
    """The same scene with its pedestrian stepping out at t_start instead (same kerbs, same walking speed)."""
    ped = _pedestrian(scenario)
    assert scenario.params is not None
    d_start, d_end = ped.d_of_t(0.0), ped.d_of_t(1e6)
    moved = replace(ped, d_of_t=crossing(d_start, d_end, t_start, scenario.params.pedestrian_speed_mps))
    return replace(scenario, actors=[moved if a is ped else a for a in scenario.actors])


def _ego_passes_first(scenario: Scenario, pedestrian: Actor) -> bool:
    """Whether the planned ego's rear passes the pedestrian before they have crossed its path."""
    track = simulate(scenario)
    d_start = pedestrian.d_of_t(0.0)
    for t, s, d in zip(track.t, track.s, track.d, strict=True):
        if s - EGO_REAR_M > pedestrian.motion.s0_m + pedestrian.size_m[0] / 2:
            return bool((pedestrian.d_of_t(float(t)) - d) * (d_start - d) > 0.0)
    return False


def test_default_scenes_keep_their_nominal_step_out() -> None:
    """The default distribution's pedestrians already leave the planner room to yield: their timing is unchanged
    (the scenes the shipped data was generated from), and the planned ego keeps its clearance."""
    for seed in range(24):
        sc = build_scenario("pedestrian_crossing", seed, 20.0)
        assert _step_out_s(sc) == round(_nominal_s(sc), 1), (seed, sc.description)
        assert _closest_approach_m(sc, _pedestrian(sc)) >= STEP_OUT_CLEARANCE_M - 1e-6, seed


def test_an_unyieldable_step_out_moves_earlier() -> None:
    sc = build_scenario("pedestrian_crossing", 3, 20.0, overrides=MOVED_EARLIER)
    t = _step_out_s(sc)
    nominal = _nominal_s(sc)
    assert 0.0 <= t < nominal - 0.5 and "behind" not in sc.description
    assert f"(moved from {nominal:.1f} s so that the ego can yield or clearly pass first)" in sc.description
    assert _closest_approach_m(sc, _pedestrian(sc)) >= STEP_OUT_CLEARANCE_M - 1e-6
    # At the nominal time the planned ego would have passed within the clearance of them.
    nominal_scene = _stepping_out_at(sc, nominal)
    assert _closest_approach_m(nominal_scene, _pedestrian(nominal_scene)) < STEP_OUT_CLEARANCE_M


@pytest.mark.parametrize(("kind", "seed"), [("lead_vehicle_braking", 1003), ("lead_vehicle_braking", 2000)])
def test_the_planners_choice_holds_a_little_either_side_of_the_step_out(kind: str, seed: int) -> None:
    """Composed scenes whose nominal step-out left the planner on the edge between passing first and stopping: the
    chosen time leaves it the same choice, with clearance, when the pedestrian steps out LAG_S earlier or later (as
    for an ego a little behind or ahead of its plan)."""
    sc = build_scenario(kind, seed, 20.0, "composed")
    t = _exact_step_out_s(_pedestrian(sc))
    assert round(t, 1) == _step_out_s(sc)
    choices = set()
    for t_try in (t - LAG_S, t, t + LAG_S):
        tried = _stepping_out_at(sc, t_try)
        assert _closest_approach_m(tried, _pedestrian(tried)) >= STEP_OUT_CLEARANCE_M, t_try
        choices.add(_ego_passes_first(tried, _pedestrian(tried)))
    assert len(choices) == 1


def test_a_pedestrian_no_step_out_time_can_save_crosses_behind_the_ego() -> None:
    sc = build_scenario("pedestrian_crossing", 3, 20.0, overrides=BEHIND)
    assert "(behind the ego, which could not have yielded safely)" in sc.description
    t = _step_out_s(sc)
    ped = _pedestrian(sc)
    track = simulate(sc)
    i = round(t / (track.t[1] - track.t[0]))
    assert track.s[i] - EGO_REAR_M > ped.motion.s0_m + CROSSWALK_M / 2  # the ego's rear is past the crosswalk
    assert _closest_approach_m(sc, ped) >= STEP_OUT_CLEARANCE_M
    # Any step-out from the start to the nominal time would have put the pedestrian in the ego's way.
    for t_try in (0.0, _nominal_s(sc)):
        tried = _stepping_out_at(sc, t_try)
        assert _closest_approach_m(tried, _pedestrian(tried)) < STEP_OUT_CLEARANCE_M, t_try


def test_an_ego_over_the_crosswalk_edge_holds_short_of_a_pedestrian_in_its_path() -> None:
    """Rolled past the crosswalk's near edge (closed-loop lag), the ego still stops for a pedestrian in its lane, and
    drives on when the pedestrian is still beside the road."""
    sc = build_scenario("pedestrian_crossing", 3, 20.0)
    ped = _pedestrian(sc)
    assert sc.crosswalk_s_m is not None
    front = sc.crosswalk_s_m - STOP_GAP_M + 1.0  # 1 m over where the ego stops for a crosswalk
    t_start = _step_out_s(sc)
    in_lane = next(t_start + k * 0.1 for k in range(200) if abs(ped.d_of_t(t_start + k * 0.1)) < 0.5)
    ctx = plan(sc, in_lane, front - EGO_FRONT_M, 0.0, 3.0)
    assert ctx.reason == "pedestrian" and ctx.accel_cmd < -3.0
    assert 0.0 < ctx.gap_m < ped.motion.s0_m - front
    waiting = plan(sc, 0.0, front - EGO_FRONT_M, 0.0, 3.0)
    assert waiting.reason != "pedestrian"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "seed", "distribution", "overrides"),
    [
        ("lead_vehicle_braking", 1001, "composed", None),  # the lead's timing put the pedestrian under the bumper
        ("lead_vehicle_braking", 1003, "composed", None),  # marginal: the plan passed, the expert braked
        ("stationary_vehicle_nudge", 1007, "composed", None),
        ("lead_vehicle_braking", 3, "wide", None),
        ("pedestrian_crossing", 3, "default", MOVED_EARLIER),
        ("pedestrian_crossing", 3, "default", BEHIND),
    ],
)
def test_the_expert_yields_to_the_pedestrian_in_closed_loop(
    kind: str, seed: int, distribution: str, overrides: dict[str, Value] | None
) -> None:
    world = ClosedLoopWorld(kind, seed, distribution=distribution, overrides=overrides, render=False)
    metrics = evaluate_rollout(run_rollout(world, ExpertDriver(world)))
    assert metrics.passed, [f.condition for f in metrics.failures]
