"""The reasoning-action consistency monitor: phrasings -> stated decision, trajectories -> shown decision, table."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.decisions import (
    LATERAL_COMPATIBLE,
    LONGITUDINAL_COMPATIBLE,
    Agreement,
    Decision,
    Lateral,
    Longitudinal,
    StepRole,
    check_consistency,
    classify_trajectory,
    compare,
    parse_decision,
    split_steps,
    trajectory_facts,
)
from alpamayo_ros.msg import DrivingDecision

L, T = Longitudinal, Lateral
U_LON, U_LAT = L.UNKNOWN, T.UNKNOWN

PHRASINGS: list[tuple[str, Longitudinal, Lateral]] = [
    # stop
    ("Stop for the red light ahead.", L.STOP, U_LAT),
    ("The traffic light is red, so come to a complete stop before the stop line.", L.STOP, U_LAT),
    ("Slow down and come to a stop at the stop line.", L.STOP, U_LAT),
    ("Remain stopped because the vehicle ahead is not moving.", L.STOP, U_LAT),
    ("The ego vehicle is stationary, so remain stopped.", L.STOP, U_LAT),
    ("Wait at the intersection until the light turns green.", L.STOP, U_LAT),
    ("I must halt behind the bus.", L.STOP, U_LAT),
    ("Hold position until the crosswalk clears.", L.STOP, U_LAT),
    # yield
    ("Yield to the pedestrian on the crosswalk.", L.YIELD, U_LAT),
    ("A pedestrian is on the crosswalk ahead, so I must yield.", L.YIELD, U_LAT),
    ("Give way to the cyclist approaching from the right.", L.YIELD, U_LAT),
    ("Let the oncoming car pass before proceeding.", L.YIELD, U_LAT),
    ("Wait for the pedestrian to finish crossing.", L.YIELD, U_LAT),
    # decelerate
    ("Decelerate because the lead vehicle is braking.", L.DECELERATE, U_LAT),
    ("The lead vehicle is braking, so I decelerate to keep a safe distance.", L.DECELERATE, U_LAT),
    ("Slow down for the speed bump.", L.DECELERATE, U_LAT),
    ("Reduce speed as the road narrows ahead.", L.DECELERATE, U_LAT),
    ("Brake gently approaching the curve.", L.DECELERATE, U_LAT),
    ("Ease off to increase the gap to the truck.", L.DECELERATE, U_LAT),
    # follow
    ("Follow the lead vehicle.", L.FOLLOW, U_LAT),
    ("Keep a safe distance to the car ahead.", L.FOLLOW, U_LAT),
    ("Keep distance to the lead vehicle since it is slowing down.", L.FOLLOW, U_LAT),
    ("Maintain a safe following distance behind the truck.", L.FOLLOW, U_LAT),
    # keep speed
    ("Keep the current speed.", L.KEEP_SPEED, U_LAT),
    ("Maintain speed; the road ahead is clear.", L.KEEP_SPEED, U_LAT),
    ("Continue at the current speed and stay in the lane.", L.KEEP_SPEED, T.KEEP_LANE),
    ("Cruise along the highway.", L.KEEP_SPEED, U_LAT),
    ("Proceed through the intersection.", L.KEEP_SPEED, U_LAT),
    # accelerate
    ("Accelerate to match the flow of traffic.", L.ACCELERATE, U_LAT),
    ("The light turned green, so speed up.", L.ACCELERATE, U_LAT),
    ("Increase speed to merge onto the highway.", L.ACCELERATE, U_LAT),
    ("Pick up speed now that the road is clear.", L.ACCELERATE, U_LAT),
    # lateral
    ("Keep lane.", U_LON, T.KEEP_LANE),
    ("Stay in the current lane.", U_LON, T.KEEP_LANE),
    ("Go straight through the intersection.", U_LON, T.KEEP_LANE),
    ("Nudge to the left to increase clearance from the construction barriers.", U_LON, T.NUDGE_LEFT),
    ("Shift slightly right to pass the parked van.", U_LON, T.NUDGE_RIGHT),
    ("Move slightly to the left around the cyclist.", U_LON, T.NUDGE_LEFT),
    ("Change lanes to the left to overtake the slow truck.", U_LON, T.LANE_CHANGE_LEFT),
    ("Change lanes to the right to pass the slow truck.", U_LON, T.LANE_CHANGE_RIGHT),
    ("Merge into the right lane before the exit.", U_LON, T.LANE_CHANGE_RIGHT),
    ("A lane change to the left is needed.", U_LON, T.LANE_CHANGE_LEFT),
    ("Turn left at the intersection.", U_LON, T.TURN_LEFT),
    ("Make a right at the next junction.", U_LON, T.TURN_RIGHT),
    ("The road curves to the left, so follow the curve and keep speed.", L.KEEP_SPEED, T.TURN_LEFT),
    ("Follow the right curve at a steady pace.", U_LON, T.TURN_RIGHT),
    # combinations
    ("Accelerate to merge into the left lane.", L.ACCELERATE, T.LANE_CHANGE_LEFT),
    ("Slow down and turn right into the parking lot.", L.DECELERATE, T.TURN_RIGHT),
    ("Proceed through the intersection after the light turns green and turn right.", L.KEEP_SPEED, T.TURN_RIGHT),
]

NEGATIONS: list[tuple[str, Longitudinal, Lateral]] = [
    ("No need to stop; keep the current speed and stay in the lane.", L.KEEP_SPEED, T.KEEP_LANE),
    ("There is no reason to brake, so maintain speed.", L.KEEP_SPEED, U_LAT),
    ("Do not change lanes; keep lane.", U_LON, T.KEEP_LANE),
    ("Pass the stop sign without stopping since it is for the other road.", U_LON, U_LAT),
    ("Rather than stopping, slow down.", L.DECELERATE, U_LAT),
    ("The car ahead is stopped at the bus stop; change lanes to the left.", U_LON, T.LANE_CHANGE_LEFT),
    ("The lead vehicle is braking hard.", U_LON, U_LAT),  # another road user's state, not an ego decision
    ("The road bends to the right.", U_LON, T.TURN_RIGHT),  # evidence is the fallback when no ego clause says
    ("A sunny day with clear skies.", U_LON, U_LAT),
    ("", U_LON, U_LAT),
]


@pytest.mark.parametrize(("text", "lon", "lat"), PHRASINGS + NEGATIONS)
def test_parse_decision(text: str, lon: Longitudinal, lat: Lateral) -> None:
    assert parse_decision(text) == Decision(lon, lat)


def test_enums_match_the_message_constants() -> None:
    for member in Longitudinal:
        assert getattr(DrivingDecision, f"LONGITUDINAL_{member.name}") == member.value
    for member in Lateral:
        assert getattr(DrivingDecision, f"LATERAL_{member.name}") == member.value


def test_split_steps_roles_and_verbatim_text() -> None:
    text = "A pedestrian is on the crosswalk ahead, so I must yield. Decelerate to a stop before the line."
    steps = split_steps(text)
    assert [r for r, _ in steps] == [StepRole.EVIDENCE, StepRole.DECISION, StepRole.ACTION]
    assert steps[0][1] == "A pedestrian is on the crosswalk ahead"
    assert all(piece in text for _, piece in steps)
    assert split_steps("") == []


# --- trajectories ------------------------------------------------------------------------------------------------


def trajectory(v0: float, accel: float = 0.0, yaw_rate: float = 0.0, lateral_end: float = 0.0) -> np.ndarray:
    """64 waypoints at 10 Hz in the t0 frame: unicycle with constant accel (speed floored at 0) and yaw rate, plus
    an optional smooth lateral shift (a lane change / nudge profile)."""
    dt = 0.1
    x = y = yaw = 0.0
    v = v0
    pts = []
    for i in range(64):
        v = max(0.0, v + accel * dt)
        yaw += yaw_rate * dt
        x += v * dt * np.cos(yaw)
        y += v * dt * np.sin(yaw)
        s = min(1.0, (i + 1) / 40)
        pts.append((x, y + lateral_end * (3 * s * s - 2 * s**3), 0.0))
    return np.array(pts)


@pytest.mark.parametrize(
    ("traj", "v0", "lon", "lat"),
    [
        (trajectory(10.0), 10.0, L.KEEP_SPEED, T.KEEP_LANE),
        (trajectory(10.0, accel=-3.0), 10.0, L.STOP, T.KEEP_LANE),
        (trajectory(15.0, accel=-1.0), 15.0, L.DECELERATE, T.KEEP_LANE),
        (trajectory(5.0, accel=1.0), 5.0, L.ACCELERATE, T.KEEP_LANE),
        (trajectory(0.0), 0.0, L.STOP, T.UNKNOWN),  # standing still: lateral not judgeable
        (trajectory(8.0, yaw_rate=0.25), 8.0, L.KEEP_SPEED, T.TURN_LEFT),
        (trajectory(8.0, yaw_rate=-0.25), 8.0, L.KEEP_SPEED, T.TURN_RIGHT),
        (trajectory(12.0, lateral_end=3.5), 12.0, L.KEEP_SPEED, T.LANE_CHANGE_LEFT),
        (trajectory(12.0, lateral_end=-3.5), 12.0, L.KEEP_SPEED, T.LANE_CHANGE_RIGHT),
        (trajectory(12.0, lateral_end=0.8), 12.0, L.KEEP_SPEED, T.NUDGE_LEFT),
        (trajectory(12.0, lateral_end=-0.8), 12.0, L.KEEP_SPEED, T.NUDGE_RIGHT),
        (trajectory(10.0, accel=-0.1), 10.0, L.KEEP_SPEED, T.KEEP_LANE),  # within the keep-speed band
        (trajectory(10.0), None, L.KEEP_SPEED, T.KEEP_LANE),  # initial speed from the first waypoint
    ],
)
def test_classify_trajectory(traj: np.ndarray, v0: float | None, lon: Longitudinal, lat: Lateral) -> None:
    assert classify_trajectory(traj, v0) == Decision(lon, lat)


def test_agreement_on_both_axes() -> None:
    report = check_consistency("Change lanes to the left and accelerate.", trajectory(10.0, 1.0, 0, 3.5), 10.0)
    assert report.agreement is Agreement.AGREE
    assert "says lane change left, trajectory shows lane change left" in report.detail
    report = check_consistency("Stop for the red light.", trajectory(10.0), 10.0)
    assert report.agreement is Agreement.DISAGREE
    assert report.detail.startswith("says stop, trajectory shows keep speed")
    assert "10.0 -> 10.0 m/s" in report.detail
    report = check_consistency("Nudge right around the parked car.", trajectory(10.0, lateral_end=0.8), 10.0)
    assert report.agreement is Agreement.DISAGREE and "nudge right" in report.detail


def test_unknown_when_nothing_to_compare() -> None:
    report = check_consistency("The sky is blue.", trajectory(10.0), 10.0)
    assert report.agreement is Agreement.UNKNOWN and "no longitudinal decision stated" in report.detail
    # stated lateral but the ego does not move: that axis is not compared; the longitudinal one agrees
    report = check_consistency("Remain stopped and keep lane.", trajectory(0.0), 0.0)
    assert report.agreement is Agreement.AGREE


@pytest.mark.parametrize(
    ("stated", "shown", "agreement"),
    [
        (L.STOP, L.DECELERATE, Agreement.AGREE),  # stop beyond the horizon
        (L.STOP, L.ACCELERATE, Agreement.DISAGREE),
        (L.YIELD, L.KEEP_SPEED, Agreement.DISAGREE),  # without a known creeping speed
        (L.YIELD, L.ACCELERATE, Agreement.DISAGREE),
        (L.FOLLOW, L.ACCELERATE, Agreement.AGREE),
        (L.KEEP_SPEED, L.DECELERATE, Agreement.DISAGREE),
        (L.ACCELERATE, L.KEEP_SPEED, Agreement.DISAGREE),
        (L.DECELERATE, L.STOP, Agreement.AGREE),
    ],
)
def test_longitudinal_table(stated: Longitudinal, shown: Longitudinal, agreement: Agreement) -> None:
    assert compare(Decision(stated, U_LAT), Decision(shown, T.KEEP_LANE))[0] is agreement


def test_tables_cover_every_known_decision_and_are_reflexive() -> None:
    assert set(LONGITUDINAL_COMPATIBLE) == set(L) - {L.UNKNOWN}
    assert set(LATERAL_COMPATIBLE) == set(T) - {T.UNKNOWN}
    for stated, shown in LONGITUDINAL_COMPATIBLE.items():
        assert stated in shown or stated in (L.YIELD, L.FOLLOW)  # intents never shown by kinematics
    for stated, shown in LATERAL_COMPATIBLE.items():
        assert stated in shown
    # left never agrees with right
    assert T.TURN_RIGHT not in LATERAL_COMPATIBLE[T.TURN_LEFT]
    assert T.LANE_CHANGE_LEFT not in LATERAL_COMPATIBLE[T.NUDGE_RIGHT]


def test_yield_agrees_with_creeping_not_with_cruising() -> None:
    creeping = check_consistency("Yield to the pedestrian.", trajectory(2.0), 2.0)
    assert creeping.shown.longitudinal is L.KEEP_SPEED and creeping.agreement is Agreement.AGREE
    cruising = check_consistency("Yield to the pedestrian.", trajectory(10.0), 10.0)
    assert cruising.agreement is Agreement.DISAGREE and "says yield, trajectory shows keep speed" in cruising.detail
    braking = check_consistency("Yield to the pedestrian.", trajectory(10.0, accel=-1.5), 10.0)
    assert braking.agreement is Agreement.AGREE


def arc(v: float, heading_end_rad: float, lateral_end: float = 0.0) -> np.ndarray:
    """Constant speed along a constant-curvature bend reaching heading_end_rad at 6.4 s (+ optional shift)."""
    return trajectory(v, yaw_rate=heading_end_rad / 6.4, lateral_end=lateral_end)


def test_following_a_bend_is_not_a_lane_change() -> None:
    bend = arc(15.0, np.radians(17))
    facts_y = bend[-1, 1]
    assert facts_y > 4.0  # the bend alone moves the ego this far sideways in the t0 frame
    assert classify_trajectory(bend, 15.0) == Decision(L.KEEP_SPEED, T.TURN_LEFT)
    gentle = arc(15.0, np.radians(-8))
    assert abs(gentle[-1, 1]) > 2.5  # more than the lane-change offset, yet only the lane's own curvature
    assert classify_trajectory(gentle, 15.0) == Decision(L.KEEP_SPEED, T.KEEP_LANE)
    assert check_consistency("Keep the lane through the bend.", gentle, 15.0).agreement is Agreement.AGREE


def test_lane_change_on_a_gentle_bend_is_still_a_lane_change() -> None:
    change = arc(12.0, np.radians(-6), lateral_end=3.5)
    assert classify_trajectory(change, 12.0).lateral is T.LANE_CHANGE_LEFT


def curve_entry(v: float, straight_sec: float, heading_end_rad: float) -> np.ndarray:
    """Straight for straight_sec, then a constant-curvature bend reaching heading_end_rad at 6.4 s."""
    dt, x, y, yaw, pts = 0.1, 0.0, 0.0, 0.0, []
    rate = heading_end_rad / (6.4 - straight_sec)
    for i in range(64):
        if (i + 1) * dt > straight_sec:
            yaw += rate * dt
        x += v * dt * np.cos(yaw)
        y += v * dt * np.sin(yaw)
        pts.append((x, y, 0.0))
    return np.array(pts)


@pytest.mark.parametrize("heading_deg", [-9.0, 9.0])
def test_entering_a_bend_late_in_the_horizon_is_not_a_lane_change(heading_deg: float) -> None:
    entry = curve_entry(12.0, 4.0, np.radians(heading_deg))
    facts = trajectory_facts(entry, 12.0)
    # against the constant-curvature arc alone this path sits > 2.5 m to the outside of the bend
    assert abs(entry[-1, 1]) < 2.5 and abs(facts.final_residual_m) < 0.4
    assert classify_trajectory(entry, 12.0) == Decision(L.KEEP_SPEED, T.KEEP_LANE)
    assert check_consistency("Keep the lane.", entry, 12.0).agreement is Agreement.AGREE


def test_lane_change_then_back_is_still_seen_on_a_straight_road() -> None:
    # heading turns left then back right: not one-way, so the band never hides the offset
    change = trajectory(12.0, lateral_end=3.5)
    assert classify_trajectory(change, 12.0).lateral is T.LANE_CHANGE_LEFT
    nudge = trajectory(12.0, lateral_end=0.8)
    assert classify_trajectory(nudge, 12.0).lateral is T.NUDGE_LEFT
