"""Reactive agents: the script when nothing is in the way, IDM following when the ego is in an agent's lane ahead."""

from __future__ import annotations

import math

import pytest

from alpamayo_ros.sim import build_scenario
from alpamayo_ros.sim.agents import MIN_GAP_M, EgoFootprint, LiveMotion, ReactiveAgents
from alpamayo_ros.sim.road import LANE_WIDTH_M

FAR_AWAY = EgoFootprint(-500.0, -495.2, 0.0, 0.95, 0.0)


def _ego_at(s_rear: float, d: float = 0.0, v: float = 0.0) -> EgoFootprint:
    return EgoFootprint(s_rear, s_rear + 4.8, d, 0.95, v)


def _run(agents: ReactiveAgents, ego: EgoFootprint, seconds: float) -> None:
    for k in range(round(seconds / 0.1)):
        agents.step(k * 0.1, 0.1, ego)


def test_agents_keep_their_scripts_when_the_ego_is_not_in_the_way() -> None:
    sc = build_scenario("lead_vehicle_braking", 1000, 20.0)
    agents = ReactiveAgents(sc)
    _run(agents, FAR_AWAY, 15.0)
    for live, scripted in zip(agents.actors(), sc.actors, strict=True):
        assert live.state(15.0) == pytest.approx(scripted.state(15.0), abs=1e-9)
    assert agents.held_up() == []


def test_lead_vehicle_stops_behind_a_standing_ego_in_its_lane() -> None:
    sc = build_scenario("lead_vehicle_braking", 1000, 20.0)
    agents = ReactiveAgents(sc)
    lead0 = sc.actors[0].state(0.0)[0]
    ego = _ego_at(lead0 + 40.0)  # standing in the lane 40 m ahead of the lead car's centre
    _run(agents, ego, 20.0)
    lead = agents.actors()[0]
    s, _, v, _ = lead.state(20.0)
    front = s + lead.size_m[0] / 2
    assert agents.held_up() == ["lead vehicle"]
    assert v == pytest.approx(0.0, abs=0.05)
    assert 0.5 * MIN_GAP_M < ego.s_rear_m - front < 5.0  # stopped behind the ego, not in it


def test_oncoming_vehicle_brakes_for_an_ego_in_its_lane() -> None:
    sc = build_scenario("free_road", 1000, 20.0)
    agents = ReactiveAgents(sc)
    i, oncoming = next((i, a) for i, a in enumerate(sc.actors) if a.name == "oncoming")
    s0 = oncoming.state(0.0)[0]
    ego = _ego_at(s0 - 60.0, d=LANE_WIDTH_M)  # standing in the oncoming lane, 60 m in front of it
    _run(agents, ego, 15.0)
    s, _, v, _ = agents.actors()[i].state(15.0)
    assert v == pytest.approx(0.0, abs=0.05)
    assert s - oncoming.size_m[0] / 2 > ego.s_front_m  # it stopped before reaching the ego


def test_an_ego_behind_or_beside_does_not_hold_an_agent_up() -> None:
    sc = build_scenario("lead_vehicle_braking", 1000, 20.0)
    lead0 = sc.actors[0].state(0.0)[0]
    behind = ReactiveAgents(sc)
    _run(behind, _ego_at(lead0 - 7.0), 5.0)  # touching its rear: not its leader
    beside = ReactiveAgents(sc)
    _run(beside, _ego_at(lead0 + 10.0, d=LANE_WIDTH_M), 5.0)  # ahead, but in the other lane (oncoming cars react)
    assert behind.held_up() == []
    assert "lead vehicle" not in beside.held_up()


def test_pedestrians_and_parked_cars_keep_their_scripts() -> None:
    for name in ("pedestrian_crossing", "stationary_vehicle_nudge"):
        sc = build_scenario(name, 1000, 20.0)
        agents = ReactiveAgents(sc)
        target = sc.actors[0]
        s = target.state(0.0)[0]
        _run(agents, _ego_at(s + 2.0, d=target.d_of_t(0.0)), 12.0)
        assert agents.actors()[0].state(12.0) == target.state(12.0)


def test_live_motion_is_pinned_then_extrapolated() -> None:
    m = LiveMotion(0.0, 10.0, (), t_ref_s=5.0, s_ref_m=30.0, v_ref_mps=4.0, a_ref_mps2=-2.0)
    assert m.state(5.0) == (30.0, 4.0, -2.0)
    s, v, a = m.state(9.0)  # stops after 2 s, 4 m further
    assert (s, v, a) == (pytest.approx(34.0), 0.0, 0.0)
    assert math.isclose(m.state(6.0)[1], 2.0)
