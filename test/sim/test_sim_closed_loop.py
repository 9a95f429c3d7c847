"""The closed-loop world: warm-up replay, observations, plan handling, and the reference drivers in the loop."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.sim.closed_loop import (
    ClosedLoopWorld,
    ConstantVelocityDriver,
    DriverOutput,
    ExpertDriver,
    Observation,
    run_rollout,
)
from alpamayo_ros.sim.generate import START_NS, generate
from alpamayo_ros.sim.metrics import evaluate_rollout
from alpamayo_ros.sim.planner import SIM_DT
from alpamayo_ros.sim.render import Renderer
from alpamayo_ros.sim.tracking import STALE_AFTER_S


class _Silent:
    """A driver that never answers."""

    name = "silent"

    def plan(self, observation: Observation) -> None:
        return None


def test_warm_up_replays_the_open_loop_drive() -> None:
    world = ClosedLoopWorld("curve_left", 3, 6.0, render=False)
    records = [world.step(None) for _ in range(16)]
    ref = world.reference
    for rec in records:
        i = round(rec.t_s / SIM_DT)
        assert (rec.x, rec.y, rec.yaw) == (ref.x[i], ref.y[i], ref.yaw[i])
    assert [r.engaged for r in records] == [False] * 15 + [True]
    assert not any(r.missed for r in records[:15]) and records[15].missed


def test_observation_has_cameras_odometry_and_world() -> None:
    world = ClosedLoopWorld("red_light_stop_line", 5, 4.0, 64, 36)
    first = world.observe()
    assert len(first.images) == len(CAMERA_NAMES) and first.images[0].shape == (36, 64, 3)
    assert [o.stamp_ns for o in first.odometry] == [START_NS]
    world.step(None)
    obs = world.observe()
    assert obs.stamp_ns == START_NS + 100_000_000
    assert [o.stamp_ns - START_NS for o in obs.odometry] == [20_000_000 * k for k in range(1, 6)]  # 50 Hz
    assert obs.ego.x > first.ego.x
    assert len(obs.world.agents) == len(world.scenario.actors)
    assert obs.world.light_state == "green" and obs.world.stop_line is not None
    right, left = obs.world.road_edges
    assert right.shape[1] == 2 and np.all(left[:, 1] > right[:, 1])  # the left edge is left of the right one
    assert ClosedLoopWorld("free_road", 5, 4.0, render=False).observe().images == ()


def test_bad_plans_are_counted_not_followed() -> None:
    world = ClosedLoopWorld("free_road", 1, 4.0, render=False, warmup_s=0.0)
    good = ConstantVelocityDriver(world).plan(world.observe())
    world.step(good)
    nan = np.array(good.poses)
    nan[3, 0] = np.nan
    rec = world.step(DriverOutput(nan))
    assert rec.missed and "non-finite" in rec.invalid_plan and rec.plan_age_s == pytest.approx(0.1)
    future = world.step(good, t0_s=world.t_s + 0.5)
    assert "not a past tick" in future.invalid_plan
    older = world.step(good, t0_s=0.0)  # a late answer for tick 0, anchored where the ego was then
    assert older.new_plan and older.plan_age_s == pytest.approx(0.3)


def test_without_plans_the_ego_brakes_after_one_second() -> None:
    world = ClosedLoopWorld("free_road", 2, 6.0, render=False, warmup_s=1.0)
    driver = ExpertDriver(world)
    while world.t_s < 1.45:
        world.step(driver.plan(world.observe()))
    rollout = run_rollout(world, _Silent())
    engaged = [r for r in rollout.records if r.engaged and r.t_s > 1.45]
    stale = [r for r in engaged if r.stale]
    assert stale and stale[0].t_s == pytest.approx(1.4 + STALE_AFTER_S + 0.1)
    assert stale[-1].v_mps < stale[0].v_mps - 5.0
    assert evaluate_rollout(rollout).stale_plans == len(stale)


def test_expert_in_the_loop_matches_its_open_loop_drive() -> None:
    world = ClosedLoopWorld("lead_vehicle_braking", 1000, 10.0, render=False)
    rollout = run_rollout(world, ExpertDriver(world))
    m = evaluate_rollout(rollout)
    assert not m.collision_any and m.passed
    last = rollout.records[-1]
    assert last.s_m == pytest.approx(world.reference.s[round(last.t_s / SIM_DT)], abs=1.5)
    assert "lead" in last.reasoning


def test_constant_velocity_runs_the_red_light() -> None:
    world = ClosedLoopWorld("red_light_stop_line", 1000, 12.0, render=False)
    m = evaluate_rollout(run_rollout(world, ConstantVelocityDriver(world)))
    assert m.red_light_violation and m.scene_score == 0.0
    assert {f.condition for f in m.failures} == {"red_light_violation", "goal_not_reached"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        ClosedLoopWorld("nope", 1)
    with pytest.raises(ValueError, match="warm-up"):
        ClosedLoopWorld("free_road", 1, 4.0, render=False, warmup_s=5.0)
    world = ClosedLoopWorld("free_road", 1, 2.0, render=False)
    run_rollout(world, _Silent())
    with pytest.raises(RuntimeError, match="already finished"):
        world.step(None)


def test_warm_up_frames_equal_the_open_loop_generator() -> None:
    world = ClosedLoopWorld("pedestrian_crossing", 4, 4.0, 64, 36)
    for _ in range(5):
        world.step(None)
    gen = generate("pedestrian_crossing", 4, 4.0, 64, 36)
    tr, i = gen.track, round(0.5 / SIM_DT)  # what gen.ticks() renders for its sixth tick
    theirs_all = Renderer(gen.scenario, gen.cameras).render(0.5, float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i]))
    for ours, theirs in zip(world.observe().images, theirs_all, strict=True):
        assert np.array_equal(ours, theirs)


def test_light_goal_follows_what_the_open_loop_drive_did() -> None:
    stops = ClosedLoopWorld("red_light_stop_line", 1000, 20.0, render=False).goal
    assert stops.stopped and stops.front_s_max_m < float("inf")
    # Seed 1011 is a late yellow (scene parameter late_yellow): too close to stop at the yellow, it passes on yellow.
    passes = ClosedLoopWorld("red_light_stop_line", 1011, 20.0, render=False).goal
    assert not passes.stopped and passes.description.startswith("reach the goal region")


def test_a_world_from_another_distribution_is_the_generators_scene_with_its_own_road() -> None:
    overrides = {"lanes_each_way": 2, "lane_width_m": 3.0, "lighting": "night"}
    world = ClosedLoopWorld("free_road", 7, 4.0, 64, 36, distribution="wide", overrides=overrides)
    gen = generate("free_road", 7, 4.0, 64, 36, distribution="wide", overrides=overrides)
    assert world.scenario.params == gen.scenario.params
    assert (world.layout.right_edge_d, world.layout.centre_line_d, world.layout.left_edge_d) == (-1.5, 4.5, 10.5)
    state = world.world_state()
    assert state.road_edges[1].shape[1] == 2
    left_x, left_y = world.road.to_world(np.array([10.0]), np.array([10.5]))
    assert np.min(np.hypot(state.road_edges[1][:, 0] - left_x, state.road_edges[1][:, 1] - left_y)) < 1e-6
    for _ in range(16):
        world.step(None)
    assert world.rollout("silent").layout == world.layout
