"""Closed-loop metrics on constructed rollouts (straight road along +x, ego lane at y = 0) with known answers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.sim.closed_loop import AgentBox, Goal, RoadLayout, Rollout, TickRecord
from alpamayo_ros.sim.metrics import (
    CLOSE_GAP_M,
    JERK_MAX_MPS3,
    evaluate_rollout,
    time_to_collision,
)
from alpamayo_ros.sim.planner import EGO_FRONT_M, EGO_REAR_M
from alpamayo_ros.sim.road import Road, Segment
from alpamayo_ros.sim.world import TrafficLight

ROAD = Road((Segment(600.0, 0.0),))


def _car(x: float, y: float = 0.0, vx: float = 0.0, length: float = 4.6, kind: str = "vehicle") -> AgentBox:
    return AgentBox("car", kind, x, y, 0.0, (length, 1.8, 1.5), vx, 0.0)


def _rec(k: int, x: float, v: float, **kw: object) -> TickRecord:
    base = TickRecord(
        tick=k,
        t_s=0.1 * k,
        engaged=True,
        x=x,
        y=0.0,
        yaw=0.0,
        v_mps=v,
        accel_mps2=0.0,
        curvature_per_m=0.0,
        s_m=x,
        d_m=0.0,
        front_s_m=x + EGO_FRONT_M,
        agents=(),
        light_state="none",
        plan_world=None,
        new_plan=True,
        plan_age_s=0.0,
        stale=False,
        missed=False,
        invalid_plan="",
        reasoning="",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _cruise(n: int = 30, v: float = 10.0, **kw: object) -> list[TickRecord]:
    return [_rec(k, v * 0.1 * k, v, **kw) for k in range(n)]


def _rollout(records: list[TickRecord], goal: Goal | None = None, light: TrafficLight | None = None) -> Rollout:
    return Rollout("test", 0, "driver", 3.0, ROAD, light, goal or Goal("anywhere", -1e9), records)


def test_clean_cruise_scores_one_and_passes() -> None:
    m = evaluate_rollout(_rollout(_cruise()), expert_progress_m=29.0)
    assert (m.collision_any, m.offroad, m.red_light_violation, m.close_encounter) == (False,) * 4
    assert m.progress_m == pytest.approx(29.0)
    assert m.scene_score == 1.0 and m.passed and m.comfortable
    assert math.isinf(m.min_ttc_s) and math.isinf(m.min_distance_to_obstacle_m)


def test_front_collision_is_at_fault_and_zeroes_the_score() -> None:
    records = _cruise()
    # At tick 10 the ego's front bumper (x = 10 + 3.8) is 1 m inside a car whose rear is at 12.8 m.
    records[10] = replace(records[10], agents=(_car(12.8 + 2.3),))
    m = evaluate_rollout(_rollout(records), expert_progress_m=29.0)
    assert m.collision_front and m.collision_at_fault and m.collision_any
    assert m.scene_score == 0.0 and not m.passed
    assert m.failures[0].condition == "collision_at_fault" and m.failures[0].tick == 10
    assert m.min_distance_to_obstacle_m == 0.0


def test_rear_contact_is_not_at_fault() -> None:
    records = _cruise()
    ego_rear = records[10].x - EGO_REAR_M
    records[10] = replace(records[10], agents=(_car(ego_rear - 2.3 + 0.5),))  # its front 0.5 m into our rear
    m = evaluate_rollout(_rollout(records), expert_progress_m=29.0)
    assert m.collision_rear and m.collision_any
    assert not m.collision_at_fault and m.scene_score == 1.0 and m.passed


def test_side_contact_is_lateral_and_at_fault() -> None:
    records = _cruise()
    records[10] = replace(records[10], agents=(_car(records[10].x + 1.4, y=1.7),))  # beside, 0.15 m overlap
    m = evaluate_rollout(_rollout(records), expert_progress_m=29.0)
    assert m.collision_lateral and m.collision_at_fault and not m.collision_front


def test_min_distance_to_obstacle() -> None:
    records = [replace(r, agents=(_car(r.x + EGO_FRONT_M + 5.0 + 2.3, vx=10.0),)) for r in _cruise()]
    m = evaluate_rollout(_rollout(records), expert_progress_m=29.0)
    assert m.min_distance_to_obstacle_m == pytest.approx(5.0)
    assert math.isinf(m.min_ttc_s)  # same speed: never closer


def test_time_to_collision_with_a_standing_car() -> None:
    rec = _rec(0, 0.0, 10.0, agents=(_car(EGO_FRONT_M + 9.95 + 2.3),))
    assert time_to_collision(rec, 0) == pytest.approx(1.0)
    assert math.isinf(time_to_collision(replace(rec, v_mps=0.0), 0))  # a standing ego is never at fault


def test_close_encounter_by_ttc_and_by_closing_gap() -> None:
    # A standing car 8 m ahead of the front bumper at 10 m/s: TTC 0.8 s < 0.95 s.
    ttc_case = [_rec(0, 0.0, 10.0, agents=(_car(EGO_FRONT_M + 8.0 + 2.3),))]
    assert evaluate_rollout(_rollout(ttc_case)).close_encounter

    def beside(gaps: list[float]) -> list[TickRecord]:  # a car alongside, the lateral gap changing
        return [
            _rec(k, 0.0, 0.0, agents=(_car(1.4, y=0.95 + 0.9 + g),)) for k, g in enumerate(gaps)
        ]  # ego standing: no TTC

    assert evaluate_rollout(_rollout(beside([0.8, 0.6, 0.4]))).close_encounter_ticks == 1
    assert not evaluate_rollout(_rollout(beside([0.3, 0.35, 0.4]))).close_encounter  # opening
    assert not evaluate_rollout(_rollout(beside([CLOSE_GAP_M + 0.5, CLOSE_GAP_M + 0.3]))).close_encounter


def test_offroad() -> None:
    inside = [replace(r, y=-0.7, d_m=-0.7) for r in _cruise()]  # right side at -1.65: on the road
    assert not evaluate_rollout(_rollout(inside)).offroad
    outside = list(inside)
    outside[12] = replace(outside[12], y=-1.5, d_m=-1.5)  # right side at -2.45 m: 0.7 m beyond the edge
    m = evaluate_rollout(_rollout(outside), expert_progress_m=29.0)
    assert m.offroad and m.scene_score == 0.0 and m.failures[0].tick == 12


def test_offroad_follows_the_scenarios_road_layout() -> None:
    far_left = [replace(r, y=8.0, d_m=8.0) for r in _cruise()]  # two lanes each way: the far oncoming lane
    assert evaluate_rollout(_rollout(far_left)).offroad  # beyond the default road's 5.25 m
    wide = replace(_rollout(far_left), layout=RoadLayout(right_edge_d=-1.75, centre_line_d=5.25, left_edge_d=12.25))
    assert not evaluate_rollout(wide).offroad


def test_red_light_violation_only_on_red() -> None:
    light = TrafficLight(s_stop_m=20.0, t_yellow_s=0.0, t_red_s=1.5)
    run = _cruise()  # the front bumper crosses s = 20 between ticks 16 and 17

    def states(red_from: int) -> list[TickRecord]:
        return [replace(r, light_state="red" if r.tick >= red_from else "yellow") for r in run]

    m = evaluate_rollout(_rollout(states(15), light=light), expert_progress_m=29.0)
    assert m.red_light_violation and m.scene_score == 0.0
    assert (m.failures[0].condition, m.failures[0].tick) == ("red_light_violation", 17)
    assert not evaluate_rollout(_rollout(states(18), light=light)).red_light_violation  # crossed on yellow


def test_stop_before_the_line_meets_the_stopped_goal() -> None:
    light = TrafficLight(s_stop_m=20.0, t_yellow_s=0.0, t_red_s=0.5)
    goal = Goal("stop before the line", 10.0, 20.0, stopped=True)
    xs = np.minimum(np.arange(30) * 1.0, 15.0)  # rear axle stops at 15 m: front bumper at 18.8 m
    records = [_rec(k, float(x), 10.0 if x < 15.0 else 0.0, light_state="red") for k, x in enumerate(xs)]
    m = evaluate_rollout(_rollout(records, goal=goal, light=light))
    assert m.passed and not m.red_light_violation
    rolling = [*records[:-1], replace(records[-1], v_mps=3.0)]
    failed = evaluate_rollout(_rollout(rolling, goal=goal, light=light))
    assert [f.condition for f in failed.failures] == ["goal_not_reached"]


def test_progress_ratio_and_scene_score() -> None:
    m = evaluate_rollout(_rollout(_cruise()), expert_progress_m=58.0)  # 29 m of the expert's 58 m
    assert m.progress_ratio == pytest.approx(0.5)
    assert m.scene_score == pytest.approx(0.5 / 0.8)
    assert evaluate_rollout(_rollout(_cruise()), expert_progress_m=2.0).progress_ratio == 1.0  # expert stood
    short_goal = Goal("far away", 500.0)
    assert evaluate_rollout(_rollout(_cruise(), goal=short_goal)).failures[0].condition == "goal_not_reached"


def test_comfort_bounds() -> None:
    hard_brake = [replace(r, accel_mps2=-5.0) for r in _cruise()]
    assert not evaluate_rollout(_rollout(hard_brake)).comfortable
    lateral = [replace(r, curvature_per_m=0.05) for r in _cruise()]  # 10^2 * 0.05 = 5 m/s^2 > 4.89
    m = evaluate_rollout(_rollout(lateral))
    assert m.max_abs_lat_accel_mps2 == pytest.approx(5.0) and not m.comfortable
    jerky = _cruise()
    jerky[5] = replace(jerky[5], accel_mps2=1.0)  # 0 -> 1 m/s^2 in 0.1 s: 10 m/s^3
    m = evaluate_rollout(_rollout(jerky))
    assert m.max_abs_jerk_mps3 == pytest.approx(10.0)
    assert m.max_abs_jerk_mps3 > JERK_MAX_MPS3 and not m.comfortable


def test_plan_deviation_between_consecutive_plans() -> None:
    def plan(t0_x: float, y: float) -> np.ndarray:
        xs = t0_x + np.arange(65) * 1.0
        return np.stack([xs, np.full(65, y), np.zeros(65)], axis=1)

    records = [_rec(k, float(k), 10.0, plan_world=plan(float(k), 0.5 * (k % 2))) for k in range(4)]
    m = evaluate_rollout(_rollout(records))
    assert m.plan_deviation_mean_m == pytest.approx(0.5)
    records[2] = replace(records[2], new_plan=False)  # a held plan is not compared
    assert evaluate_rollout(_rollout(records)).plan_deviation_max_m == pytest.approx(0.5)


def test_missed_stale_and_invalid_plans_are_counted_and_warm_up_is_skipped() -> None:
    records = _cruise()
    records[0] = replace(records[0], engaged=False, missed=False, agents=(_car(3.0),))  # a warm-up hit is ignored
    records[3] = replace(records[3], new_plan=False, missed=True)
    records[4] = replace(records[4], new_plan=False, missed=True, stale=True)
    records[5] = replace(records[5], new_plan=False, missed=True, invalid_plan="a plan has non-finite poses")
    m = evaluate_rollout(_rollout(records))
    assert (m.missed_plans, m.stale_plans, m.invalid_plans, m.ticks) == (3, 1, 1, 29)
    assert not m.collision_any


def test_a_rollout_without_engaged_ticks_is_an_error() -> None:
    with pytest.raises(ValueError, match="no engaged ticks"):
        evaluate_rollout(_rollout([replace(r, engaged=False) for r in _cruise(3)]))
