"""Reference labels for a state a driver reached by itself: strayed from its lane, the label says so and names the way
back, on the side the future shows; the scenario's own drive (no offset given) keeps its labels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Lateral, parse_decision, trajectory_facts
from alpamayo_ros.sim.labels import STRAYED_OFFSET_M, make_label
from alpamayo_ros.sim.planner import Context, plan
from alpamayo_ros.sim.scenes import build_scenario

SPEED = 10.0


def _context() -> Context:
    scenario = build_scenario("free_road", 0, 10.0, "default", None)
    ctx = plan(scenario, 2.0, 20.0, 0.0, SPEED)
    assert ctx.reason == "free" and not ctx.nudging
    return ctx


def _future(lateral_end_m: float, heading_end_rad: float = 0.0) -> np.ndarray:
    """64 poses at SPEED: a smooth sideways shift to ``lateral_end_m``, or a constant-curvature bend."""
    t = 0.1 * np.arange(1, 65)
    x = SPEED * t
    if heading_end_rad:
        yaw = heading_end_rad * t / t[-1]
        y = np.cumsum(SPEED * 0.1 * np.sin(yaw))
    else:
        y = lateral_end_m * (1.0 - np.cos(np.pi * np.clip(t / 4.0, 0.0, 1.0))) / 2.0
    return np.column_stack([x, y])


def test_without_an_offset_the_label_is_the_open_loop_one() -> None:
    facts = trajectory_facts(_future(-2.0), SPEED)
    assert make_label(_context(), SPEED, facts) == make_label(_context(), SPEED, facts, lane_offset_m=None)
    assert make_label(_context(), SPEED, facts).text.endswith("Keep the lane and keep a steady speed.")


@pytest.mark.parametrize(("offset", "back"), [(1.6, "right"), (-1.6, "left")])
def test_strayed_to_one_side_the_label_names_it_and_steers_back(offset: float, back: str) -> None:
    label = make_label(_context(), SPEED, trajectory_facts(_future(-offset), SPEED), lane_offset_m=offset)
    side = "left" if offset > 0 else "right"
    assert f"I am to the {side} of the centre of my lane." in label.text
    assert label.text.endswith(f"Shift to the {back} back to the centre of my lane and keep a steady speed.")
    expected = Lateral.NUDGE_RIGHT if back == "right" else Lateral.NUDGE_LEFT
    assert label.lateral is expected and parse_decision(label.text).lateral is expected


def test_within_the_lane_while_passing_or_on_a_bend_the_other_way_no_stray_is_named() -> None:
    ctx = _context()
    small = make_label(ctx, SPEED, trajectory_facts(_future(-0.5), SPEED), lane_offset_m=STRAYED_OFFSET_M - 0.05)
    assert "centre of my lane" not in small.text and small.lateral is Lateral.KEEP_LANE
    passing = make_label(replace(ctx, nudging=True), SPEED, trajectory_facts(_future(-1.6), SPEED), lane_offset_m=1.6)
    assert "I am to the" not in passing.text
    bend = trajectory_facts(_future(0.0, heading_end_rad=0.6), SPEED)  # strayed left, yet the future turns left
    label = make_label(ctx, SPEED, bend, lane_offset_m=1.6)
    assert "I am to the" not in label.text and label.lateral is not Lateral.NUDGE_RIGHT
