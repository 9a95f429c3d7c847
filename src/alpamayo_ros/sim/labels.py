"""Reference Chain-of-Causation labels: what the ego does next, and why, in words the monitor reads back.

The *decision* is what the ego actually does over the next 6.4 s: its ground-truth future classified by the node's
own monitor (``core.decisions``), so a label never says "stop" over a future that keeps speed, and "yield" only
over one that slows or creeps. This is hindsight, as in the Chain-of-Causation data Alpamayo was trained on, whose
decisions are anchored to the ego's recorded driving. The *evidence* cites only what a camera could see at the tick
(the constraint the planner reacts to now or, when the slow-down starts later within the horizon, the visible cause
of it: a pedestrian at the kerb, a light ahead, a car ahead, the road's bend); nothing that is not yet in view.
Decisions use the DrivingDecision constants of alpamayo_ros/msg; roles the CausalStep constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alpamayo_ros.core.decisions import (
    LATERAL_COMPATIBLE,
    Lateral,
    Longitudinal,
    StepRole,
    TrajectoryFacts,
    TrajectoryThresholds,
    classify_facts,
)
from alpamayo_ros.sim.planner import Context

# The decisions module's enums carry the DrivingDecision / CausalStep message constants.
LON_STOP, LON_YIELD, LON_DECELERATE = Longitudinal.STOP, Longitudinal.YIELD, Longitudinal.DECELERATE
LON_FOLLOW, LON_KEEP_SPEED, LON_ACCELERATE = Longitudinal.FOLLOW, Longitudinal.KEEP_SPEED, Longitudinal.ACCELERATE
LAT_KEEP_LANE, LAT_NUDGE_LEFT, LAT_NUDGE_RIGHT = Lateral.KEEP_LANE, Lateral.NUDGE_LEFT, Lateral.NUDGE_RIGHT
LAT_TURN_LEFT, LAT_TURN_RIGHT = Lateral.TURN_LEFT, Lateral.TURN_RIGHT
ROLE_EVIDENCE, ROLE_DECISION, ROLE_ACTION = StepRole.EVIDENCE, StepRole.DECISION, StepRole.ACTION
# The node's thresholds: the label and the classified future are judged by the same rules.
_TH = TrajectoryThresholds()
_SLOWING = (Longitudinal.STOP, Longitudinal.DECELERATE)
# The evidence of the one label whose cause no camera shows: the ego is faster than the scene's cruise speed, which
# is a draw of the scenario (no speed-limit sign says it). Only a driver of its own reaches such states; see
# ``rests_on_unseen_speed``.
UNSEEN_SPEED_EVIDENCE = "I am faster than is comfortable here."
# A bend is named once it starts this close (or the ego is in it); farther out the label says "keep the lane", which
# the monitor accepts over a trajectory that follows the bend (keeping a lane includes its curves).
BEND_IN_VIEW_M = 30.0
# Farther than this from where the planner holds it (Frenet d - d_target), an ego that is not passing a parked car has
# strayed from its lane: its edge reaches the lane line (3.5 m lanes, 1.9 m wide ego). The label then says so and
# names the way back.
STRAYED_OFFSET_M = 0.75


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


def _side(heading_change_rad: float) -> str:
    return "left" if heading_change_rad > 0 else "right"


def _pedestrian(ctx: Context) -> str:
    """The pedestrian as the evidence names them: the side is said when they come from the left kerb."""
    return "A pedestrian from the left" if ctx.pedestrian_from_left else "A pedestrian"


def _by_motion(shown: Longitudinal, slow: str, keep: str, faster: str) -> tuple[Longitudinal, str]:
    """Decision sentence for a cause that does not itself dictate the manoeuvre."""
    if shown in _SLOWING:
        return LON_DECELERATE, slow
    if shown is Longitudinal.ACCELERATE:
        return LON_ACCELERATE, faster
    return LON_KEEP_SPEED, keep


def _longitudinal(
    ctx: Context, cause: str, shown: Longitudinal, facts: TrajectoryFacts, *, nudge_shown: bool = True
) -> tuple[Longitudinal, str, str]:
    """(decision, evidence sentence, decision sentence) for the binding cause and what the ego does; nudge_shown:
    whether the future shows the pass as a nudge (on a bend it shows as the turn, and the sentence names no side)."""
    slowing = shown in _SLOWING
    if cause != "red_light" and ctx.light == "yellow" and ctx.light_dist_m > 0.0:  # a late yellow: no safe stop
        evidence = (
            f"The traffic light ahead turned yellow with the stop line only {_m(ctx.light_dist_m)} away, "
            "too close to stop safely."
        )
        lon, decision = _by_motion(
            shown, "I ease off but go through on yellow.", "I go through on yellow.", "I go through on yellow."
        )
        return lon, evidence, decision
    if cause == "red_light" and ctx.light in ("yellow", "red"):
        evidence = f"The traffic light ahead is {ctx.light} and the stop line is {_m(ctx.light_dist_m)} away."
        if slowing:
            return LON_STOP, evidence, "I must stop at the stop line."
        if shown is Longitudinal.ACCELERATE:
            return LON_ACCELERATE, evidence, "I will accelerate away as soon as it turns green."
        return LON_KEEP_SPEED, evidence, "I am already at the line, so I continue through the intersection."
    if cause == "red_light" and ctx.light == "none":  # beyond perception range now, binding within the horizon
        lon, decision = _by_motion(
            shown, "I should ease off as I approach it.", "I can keep my speed.", "I can accelerate."
        )
        return lon, "There is a traffic light far ahead.", decision
    if cause == "red_light":  # green now: it changes within the horizon, the ego eases off before it does
        evidence = f"The traffic light ahead is {ctx.light} and the stop line is {_m(ctx.light_dist_m)} away."
        lon, decision = _by_motion(
            shown, "I should ease off in case it changes.", "I can keep my speed.", "I can accelerate."
        )
        return lon, evidence, decision
    if cause == "pedestrian":
        evidence = f"{_pedestrian(ctx)} is crossing at the crosswalk {_m(ctx.pedestrian_dist_m)} ahead."
        creeping = shown is Longitudinal.KEEP_SPEED and facts.final_speed_mps <= _TH.yield_creep_speed_mps
        if slowing or creeping:
            return LON_YIELD, evidence, "I must yield to the pedestrian."
        evidence = f"The pedestrian at the crosswalk {_m(ctx.pedestrian_dist_m)} ahead is clearing my lane."
        lon, decision = _by_motion(shown, "", "I can keep my speed.", "I can accelerate again.")
        return lon, evidence, decision
    if cause == "crosswalk":
        evidence = (
            f"{_pedestrian(ctx)} is waiting at the crosswalk {_m(ctx.pedestrian_dist_m)} ahead."
            if math.isfinite(ctx.pedestrian_dist_m)
            else "There is a crosswalk ahead."
        )
        lon, decision = _by_motion(
            shown, "I should slow down in case they cross.", "I can keep my speed for now.", "I can accelerate."
        )
        return lon, evidence, decision
    if cause == "lead":
        if not math.isfinite(ctx.gap_m):  # the car ahead binds only later within the horizon
            return LON_FOLLOW, "A vehicle is ahead in my lane.", "I should follow it at a safe distance."
        if ctx.lead_v < 0.5 and ctx.gap_m < 15.0 and slowing:
            return LON_STOP, f"The lead vehicle {_m(ctx.gap_m)} ahead has stopped.", "I must stop behind it."
        if ctx.lead_a < -1.0 and slowing:
            evidence = f"The lead vehicle {_m(ctx.gap_m)} ahead is braking."
            return LON_DECELERATE, evidence, "I should decelerate to keep a safe distance."
        evidence = f"A lead vehicle is {_m(ctx.gap_m)} ahead in my lane."
        return LON_FOLLOW, evidence, "I should follow it at a safe distance."
    if cause == "curve":
        evidence = f"The road curves to the {_side(ctx.heading_change_rad)} ahead."
        lon, decision = _by_motion(
            shown, "I should slow down for the curve.", "I can keep my speed.", "I can accelerate."
        )
        return lon, evidence, decision
    if ctx.nudging and not nudge_shown:
        evidence = "A parked vehicle partly blocks my lane ahead."
        lon, decision = _by_motion(
            shown,
            "I should slow down as I pass it.",
            "I can keep my speed as I pass it.",
            "I can speed up as I pass it.",
        )
        return lon, evidence, decision
    if ctx.nudging:
        evidence = "A parked vehicle partly blocks my lane ahead."
        lon, decision = _by_motion(
            shown,
            "I should slow down and pass it on the left.",
            "I should pass it on the left.",
            "I can speed up as I pass it on the left.",
        )
        return lon, evidence, decision
    if slowing:
        return LON_DECELERATE, UNSEEN_SPEED_EVIDENCE, "I should slow down."
    if shown is Longitudinal.ACCELERATE:
        return LON_ACCELERATE, "The lane ahead is clear.", "I can accelerate to the speed limit."
    return LON_KEEP_SPEED, "The lane ahead is clear.", "I should keep my speed."


def rests_on_unseen_speed(text: str) -> bool:
    """Whether a label's reasoning gives the scene's hidden cruise speed as its only reason to slow down.

    The frames show no desired speed, so from the cameras alone "faster than is comfortable" at 19 m/s cannot be told
    from cruising at 19 m/s. A driver that overshoots its cruise speed in closed loop collects such labels at speeds the
    rendered scenes of ``default`` never reach, and learns to slow down at any high speed; a recipe may leave them out
    (``training.recipe``: ``drop_unseen_speed``).
    """
    return text.startswith(UNSEEN_SPEED_EVIDENCE)


def make_label(
    ctx: Context,
    speed_mps: float,
    future: TrajectoryFacts,
    upcoming: str = "free",
    lane_offset_m: float | None = None,
) -> ReferenceLabel:
    """The reference label at a tick.

    ctx: the planner's state now; future: the kinematics of the ego's ground-truth next 6.4 s; upcoming: the first
    constraint the planner will brake for within that horizon ("free" if none), used when nothing binds yet;
    lane_offset_m: how far the ego stands left (+) of where the planner holds it (m), for states a driver reached by
    itself (closed loop); ``None`` for the scenario's own drive, which leaves the lane centre only on purpose.
    """
    shown = classify_facts(future, _TH)
    strayed = _strayed_side(ctx, shown.lateral, lane_offset_m)
    cause = ctx.reason
    if cause == "free" and not ctx.nudging and shown.longitudinal in _SLOWING and upcoming != "free":
        cause = upcoming
    # Passing a parked car on a bend: the bend dominates the path, so the parked car is evidence, not a nudge.
    bend_shown = shown.lateral in (Lateral.TURN_LEFT, Lateral.TURN_RIGHT)
    lon, first, decision = _longitudinal(ctx, cause, shown.longitudinal, future, nudge_shown=not bend_shown)
    evidence = [first]

    if strayed:
        back = "right" if strayed == "left" else "left"
        evidence.append(f"I am to the {strayed} of the centre of my lane.")
        lat = LAT_NUDGE_RIGHT if back == "right" else LAT_NUDGE_LEFT
        action = f"Shift to the {back} back to the centre of my lane"
    elif ctx.nudging and not bend_shown:
        evidence.append("A parked vehicle partly blocks my lane ahead.")  # once: duplicates are dropped below
        if shown.lateral in (Lateral.NUDGE_RIGHT, Lateral.LANE_CHANGE_RIGHT):
            lat, action = LAT_NUDGE_RIGHT, "Pass it, then shift to the right back to the centre of my lane"
        else:
            lat, action = LAT_NUDGE_LEFT, "Nudge to the left to pass it with a safe clearance"
    elif bend_shown and ctx.curve_dist_m <= BEND_IN_VIEW_M:
        left = shown.lateral is Lateral.TURN_LEFT
        if cause != "curve":
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
        *((ROLE_EVIDENCE, e) for e in dict.fromkeys(evidence)),
        (ROLE_DECISION, decision),
        (ROLE_ACTION, f"{action} {verb}"),
    )
    return ReferenceLabel(lon, lat, steps)


def _strayed_side(ctx: Context, shown: Lateral, lane_offset_m: float | None) -> str:
    """The side ("left" or "right") the ego has strayed to when the future steers it back; "" when it has not
    strayed, is passing a parked car, or the future bends the other way (then the bend is what the label names)."""
    if lane_offset_m is None or ctx.nudging or abs(lane_offset_m) <= STRAYED_OFFSET_M:
        return ""
    back = LAT_NUDGE_RIGHT if lane_offset_m > 0 else LAT_NUDGE_LEFT
    if shown not in LATERAL_COMPATIBLE[back]:
        return ""
    return "left" if lane_offset_m > 0 else "right"
