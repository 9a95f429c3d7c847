"""Reference Chain-of-Causation labels: the planner's decision at a tick, put into words.

A label cites only what a camera could see at that tick (the binding constraint the planner reacted to, the light's
current colour, the road shape ahead); nothing about the future. Decisions use the DrivingDecision constants of
alpamayo_ros/msg; roles the CausalStep constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alpamayo_ros.core.decisions import Lateral, Longitudinal, StepRole, TrajectoryThresholds
from alpamayo_ros.tools.scenarios.planner import Context

# The decisions module's enums carry the DrivingDecision / CausalStep message constants.
LON_STOP, LON_YIELD, LON_DECELERATE = Longitudinal.STOP, Longitudinal.YIELD, Longitudinal.DECELERATE
LON_FOLLOW, LON_KEEP_SPEED, LON_ACCELERATE = Longitudinal.FOLLOW, Longitudinal.KEEP_SPEED, Longitudinal.ACCELERATE
LAT_KEEP_LANE, LAT_NUDGE_LEFT = Lateral.KEEP_LANE, Lateral.NUDGE_LEFT
LAT_TURN_LEFT, LAT_TURN_RIGHT = Lateral.TURN_LEFT, Lateral.TURN_RIGHT
ROLE_EVIDENCE, ROLE_DECISION, ROLE_ACTION = StepRole.EVIDENCE, StepRole.DECISION, StepRole.ACTION
# Same thresholds as the node's trajectory classifier, so a label and the classified future can agree.
_TH = TrajectoryThresholds()
TURN_HEADING_RAD = _TH.turn_heading_rad


@dataclass(frozen=True)
class ReferenceLabel:
    """Decision + causal steps (role, text) + the full text (steps joined)."""

    longitudinal: Longitudinal
    lateral: Lateral
    steps: tuple[tuple[StepRole, str], ...]

    @property
    def text(self) -> str:
        return " ".join(text for _, text in self.steps)


def _m(x: float) -> str:
    return f"{max(0.0, x):.0f} m"


def make_label(ctx: Context, speed_mps: float) -> ReferenceLabel:
    """The reference label for a planner context and the ego speed at that tick."""
    evidence: list[str] = []
    lon: Longitudinal
    if ctx.reason == "red_light":
        evidence.append(f"The traffic light ahead is {ctx.light} and the stop line is {_m(ctx.light_dist_m)} away.")
        lon, decision = LON_STOP, "I must stop at the stop line."
    elif ctx.reason == "pedestrian":
        evidence.append(f"A pedestrian is crossing at the crosswalk {_m(ctx.pedestrian_dist_m)} ahead.")
        lon, decision = LON_YIELD, "I must yield to the pedestrian."
    elif ctx.reason == "lead":
        if ctx.lead_v < 0.5 and ctx.gap_m < 15.0:
            evidence.append(f"The lead vehicle {_m(ctx.gap_m)} ahead has stopped.")
            lon, decision = LON_STOP, "I must stop behind it."
        elif ctx.lead_a < -1.0:
            evidence.append(f"The lead vehicle {_m(ctx.gap_m)} ahead is braking.")
            lon, decision = LON_DECELERATE, "I should decelerate to keep a safe distance."
        else:
            evidence.append(f"A lead vehicle is {_m(ctx.gap_m)} ahead in my lane.")
            lon, decision = LON_FOLLOW, "I should follow it at a safe distance."
    elif ctx.reason == "curve" and ctx.accel_cmd < -0.3:
        side = "left" if ctx.heading_change_rad > 0 else "right"
        evidence.append(f"The road curves to the {side} ahead.")
        lon, decision = LON_DECELERATE, "I should slow down for the curve."
    elif ctx.nudging:
        evidence.append("A parked vehicle partly blocks my lane ahead.")
        slow = ctx.accel_cmd < -0.3
        lon = LON_DECELERATE if slow else LON_KEEP_SPEED
        decision = "I should slow down and pass it on the left." if slow else "I should pass it on the left."
    elif ctx.v_desired - speed_mps > max(_TH.speed_change_mps, _TH.speed_change_ratio * speed_mps):
        evidence.append("The lane ahead is clear.")
        lon, decision = LON_ACCELERATE, "I can accelerate to the speed limit."
    elif ctx.accel_cmd < -0.5:
        evidence.append("I am faster than is comfortable here.")
        lon, decision = LON_DECELERATE, "I should slow down."
    else:
        evidence.append("The lane ahead is clear." if ctx.reason == "free" else "I am at a comfortable speed.")
        lon, decision = LON_KEEP_SPEED, "I should keep my speed."

    if ctx.nudging:
        if ctx.reason not in ("free", "curve"):
            evidence.append("A parked vehicle partly blocks my lane ahead.")
        lat, action = LAT_NUDGE_LEFT, "Nudge to the left to pass it with a safe clearance"
    elif abs(ctx.heading_change_rad) >= TURN_HEADING_RAD and math.isfinite(ctx.curve_dist_m):
        left = ctx.heading_change_rad > 0
        if ctx.reason != "curve":
            evidence.append(f"The road curves to the {'left' if left else 'right'} ahead.")
        lat = LAT_TURN_LEFT if left else LAT_TURN_RIGHT
        action = f"Follow the road through the {'left' if left else 'right'} curve"
    else:
        lat, action = LAT_KEEP_LANE, "Keep the lane"
    verb = {
        LON_STOP: "and come to a stop.",
        LON_YIELD: "and slow down to yield.",
        LON_DECELERATE: "and decelerate.",
        LON_FOLLOW: "and follow the lead vehicle.",
        LON_KEEP_SPEED: "and keep a steady speed.",
        LON_ACCELERATE: "and accelerate.",
    }[lon]
    if lon == LON_STOP and speed_mps < 0.3:
        verb = "and stay stopped."
    steps = (
        *((ROLE_EVIDENCE, e) for e in evidence),
        (ROLE_DECISION, decision),
        (ROLE_ACTION, f"{action} {verb}"),
    )
    return ReferenceLabel(lon, lat, steps)
