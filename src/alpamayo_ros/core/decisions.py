"""The run-time reasoning-action consistency monitor: every rule lives in this module.

Two closed sets of decisions (values equal the constants of alpamayo_ros/msg/DrivingDecision):
longitudinal (stop, yield, decelerate, follow, keep speed, accelerate) and lateral (keep lane, nudge, lane change,
turn; left/right). The monitor

1. parses the decision the Chain-of-Causation *states* (``parse_decision``), rules:
   - the text is split into clauses (sentences, ';', and the connectors "so", "therefore", "because", "since",
     "as", "while", "but"); clauses introduced by "because/since/as/due to/while" and clauses whose subject is
     another road user or a traffic device ("the lead vehicle is braking") are *evidence*; the others are ego
     clauses. Decisions come from ego clauses; only if they state none is the evidence used;
   - a phrase preceded in its clause by a negation ("no need to", "not", "don't", "without", "instead of",
     "rather than", "never") is ignored ("no need to stop");
   - noun uses are not decisions: "stop sign", "stop line", "bus stop", "stop-and-go" are masked out, and so
     are states of other road users ("the car ahead is stopped", "the lead vehicle is braking");
   - when several decisions of one axis are stated, the most restrictive wins (stop > yield > decelerate >
     follow > accelerate > keep speed; lane change > turn > nudge > keep lane): the monitor prefers to ask
     "did the trajectory slow down?" over letting a stated stop pass unchecked;
   - nothing found: UNKNOWN.
2. classifies the decision the trajectory *shows* (``classify_trajectory``) from the 64 waypoints (t0 frame,
   0.1 s apart): speeds by finite differences; STOP if the final speed < ``stop_speed_mps``; DECELERATE /
   ACCELERATE if the final speed differs from the initial one by more than max(``speed_change_mps``,
   ``speed_change_ratio`` * initial); else KEEP_SPEED. Lateral: UNKNOWN if the ego travels < ``min_travel_m``;
   TURN if the heading changes by more than ``turn_heading_rad``. Lateral offsets are measured from the
   constant-curvature arc with the trajectory's own final heading (its *residual*), so that following a curve is
   not mistaken for changing lanes (a 17 degree bend moves the ego ~5 m sideways in the t0 frame). When the heading
   turns one way only (never back by more than ``MONOTONIC_HEADING_TOL_RAD``), the path is entering or leaving a
   bend, which puts it between the straight line and that arc: only an offset outside that band counts (a lane
   change turns one way, then back). LANE_CHANGE if the final residual exceeds ``lane_change_offset_m``; NUDGE if
   the largest residual exceeds ``nudge_offset_m``; else KEEP_LANE. Follow and yield are intents, not kinematics:
   a trajectory is never classified as such.
   A stated yield agrees with a trajectory that slows or stops, or that keeps a creeping speed of at most
   ``yield_creep_speed_mps``: "yield" with a trajectory that holds 10 m/s is a disagreement.
3. compares them through ``LONGITUDINAL_COMPATIBLE`` / ``LATERAL_COMPATIBLE`` (stated -> shown classes that agree).
   Per axis: compared only when both sides are known. Overall: DISAGREE if any compared axis disagrees, AGREE if
   at least one axis was compared and all compared agree, else UNKNOWN.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.rig import STEP_SEC


class Longitudinal(enum.IntEnum):
    UNKNOWN = 0
    STOP = 1
    YIELD = 2
    DECELERATE = 3
    FOLLOW = 4
    KEEP_SPEED = 5
    ACCELERATE = 6


class Lateral(enum.IntEnum):
    UNKNOWN = 0
    KEEP_LANE = 1
    NUDGE_LEFT = 2
    NUDGE_RIGHT = 3
    LANE_CHANGE_LEFT = 4
    LANE_CHANGE_RIGHT = 5
    TURN_LEFT = 6
    TURN_RIGHT = 7


class Agreement(enum.IntEnum):
    UNKNOWN = 0
    AGREE = 1
    DISAGREE = 2


class StepRole(enum.IntEnum):
    UNKNOWN = 0
    EVIDENCE = 1
    DECISION = 2
    ACTION = 3


@dataclass(frozen=True)
class Decision:
    longitudinal: Longitudinal = Longitudinal.UNKNOWN
    lateral: Lateral = Lateral.UNKNOWN


# --- 1. Text rules ---------------------------------------------------------------------------------------------

_L = r"(?:to\s+the\s+|towards?\s+the\s+|to\s+|into\s+the\s+)?"
# Patterns per decision, most restrictive first (the order IS the priority).
LONGITUDINAL_PATTERNS: tuple[tuple[Longitudinal, str], ...] = (
    (
        Longitudinal.STOP,
        r"\b(?:come\s+to\s+a\s+(?:complete\s+|full\s+)?(?:stop|halt)|stop(?:s|ped|ping)?|halt(?:s|ed|ing)?|"
        r"remain(?:s|ing)?\s+(?:stopped|stationary|still)|stay(?:s|ing)?\s+(?:stopped|stationary)|"
        r"hold(?:s|ing)?\s+(?:position|still)|wait(?:s|ing)?\s+(?:at|behind|until|for\s+the\s+(?:light|signal)))\b",
    ),
    (
        Longitudinal.YIELD,
        r"\b(?:yield(?:s|ed|ing)?|give(?:s)?\s+way|giving\s+way|let(?:ting)?(?:\s+\w+){1,3}\s+(?:pass|go\s+first)|"
        r"wait(?:s|ing)?\s+for)\b",
    ),
    (
        Longitudinal.DECELERATE,
        r"\b(?:decelerat\w*|slow(?:s|ed|ing)?\s+down|slow(?:s|ing)?|brak(?:e|es|ed|ing)|reduc(?:e|es|ed|ing)\s+"
        r"(?:the\s+|its\s+|my\s+|our\s+)?speed|lower(?:s|ing)?\s+(?:the\s+)?speed|eas(?:e|es|ing)\s+off)\b",
    ),
    (
        Longitudinal.FOLLOW,
        r"\b(?:follow(?:s|ing)?\s+(?:the\s+)?(?:lead|leading|preceding|vehicle|car|truck|traffic|bus)|"
        r"(?:keep|maintain)(?:s|ing)?\s+(?:a\s+)?(?:safe\s+)?(?:following\s+)?(?:distance|gap|headway))\b",
    ),
    (
        Longitudinal.ACCELERATE,
        r"\b(?:accelerat\w*|speed(?:s|ing)?\s+up|increas(?:e|es|ed|ing)\s+(?:the\s+|its\s+|my\s+)?speed|"
        r"pick(?:s|ing)?\s+up\s+speed|gain(?:s|ing)?\s+speed)\b",
    ),
    (
        Longitudinal.KEEP_SPEED,
        r"\b(?:(?:keep|maintain)(?:s|ing)?\s+(?:the\s+|a\s+|its\s+|my\s+|our\s+)?(?:current\s+|steady\s+|constant\s+|"
        r"same\s+)?(?:speed|velocity|pace)|cruis(?:e|es|ing)|"
        r"(?:continue|proceed)(?:s|d|ing)?\s+(?:at\s+(?:the\s+)?(?:current|same|a\s+steady|a\s+constant|constant)\s+"
        r"(?:speed|pace)|straight|ahead|forward|driving|through)|(?:continue|proceed)(?:s|d|ing)?\b)",
    ),
)

LATERAL_PATTERNS: tuple[tuple[Lateral, str], ...] = (
    (
        Lateral.LANE_CHANGE_LEFT,
        rf"\b(?:(?:change|changes|changing)\s+lanes?\s+{_L}left|lane\s+change\s+{_L}left|left\s+lane\s+change|"
        rf"merge(?:s)?\s+{_L}(?:left|left\s+lane)|move(?:s)?\s+(?:over\s+)?into\s+the\s+left\s+lane)\b",
    ),
    (
        Lateral.LANE_CHANGE_RIGHT,
        rf"\b(?:(?:change|changes|changing)\s+lanes?\s+{_L}right|lane\s+change\s+{_L}right|right\s+lane\s+change|"
        rf"merge(?:s)?\s+{_L}(?:right|right\s+lane)|move(?:s)?\s+(?:over\s+)?into\s+the\s+right\s+lane)\b",
    ),
    (
        Lateral.TURN_LEFT,
        rf"\b(?:turn(?:s|ing)?\s+{_L}left|left\s+turn|make\s+a\s+left|(?:curve|curves|bend|bends|veer|veers)\s+"
        rf"{_L}left|follow(?:s|ing)?\s+the\s+(?:left\s+(?:curve|bend)|(?:curve|bend)\s+to\s+the\s+left))\b",
    ),
    (
        Lateral.TURN_RIGHT,
        rf"\b(?:turn(?:s|ing)?\s+{_L}right|right\s+turn|make\s+a\s+right|(?:curve|curves|bend|bends|veer|veers)\s+"
        rf"{_L}right|follow(?:s|ing)?\s+the\s+(?:right\s+(?:curve|bend)|(?:curve|bend)\s+to\s+the\s+right))\b",
    ),
    (
        Lateral.NUDGE_LEFT,
        rf"\b(?:nudg(?:e|es|ing)\s+{_L}left|(?:shift|offset|move|steer|bias)(?:s|ing)?\s+(?:slightly\s+)?{_L}left|"
        rf"(?:shift|move|steer)(?:s|ing)?\s+{_L}left\s+slightly)\b",
    ),
    (
        Lateral.NUDGE_RIGHT,
        rf"\b(?:nudg(?:e|es|ing)\s+{_L}right|(?:shift|offset|move|steer|bias)(?:s|ing)?\s+(?:slightly\s+)?{_L}right|"
        rf"(?:shift|move|steer)(?:s|ing)?\s+{_L}right\s+slightly)\b",
    ),
    (
        Lateral.KEEP_LANE,
        r"\b(?:keep(?:s|ing)?\s+(?:in\s+)?(?:the\s+|its\s+|my\s+|our\s+)?(?:current\s+)?lane|lane\s+keeping|"
        r"stay(?:s|ing)?\s+in\s+(?:the\s+|its\s+|my\s+|our\s+)?(?:current\s+|same\s+)?lane|"
        r"maintain(?:s|ing)?\s+(?:the\s+|its\s+)?(?:current\s+)?lane|"
        r"(?:continue|proceed|go|drive|going|driving)(?:s|d|ing)?\s+straight)\b",
    ),
)

_NEGATION = re.compile(
    r"\b(?:no\s+need\s+to|not|never|no|don't|do\s+not|doesn't|does\s+not|without|instead\s+of|rather\s+than|"
    r"need\s+not|needn't|cannot|can't|avoid(?:s|ing)?|unnecessary\s+to)\b[^,]*$"
)
# Nouns that look like decisions.
_NOUN_MASK = re.compile(
    r"\b(?:stop\s+(?:sign|line|bar|light)s?|bus\s+stop|stop-and-go|stopped\s+(?:vehicle|car|truck|bus|traffic)s?|"
    r"slow(?:er)?\s+(?:vehicle|car|truck|traffic|moving)s?|braking\s+(?:vehicle|car)s?|"
    r"(?:left|right)\s+turn\s+(?:lane|only|signal|arrow)|turn\s+signal|yield\s+sign|"
    # states of other road users ("the car ahead is stopped", "the lead vehicle is braking") are evidence
    r"(?:is|are|was|were|keeps|keep)\s+(?:\w+\s+)?(?:stopped|stopping|braking|slowing(?:\s+down)?|yielding|"
    r"accelerating|halted|waiting|turning(?:\s+(?:left|right))?|merging|changing\s+lanes))\b"
)
_EVIDENCE_LEAD = re.compile(r"^(?:because|since|as|due\s+to|while|given\s+that|when|there\s+(?:is|are))\b")
_AGENT_SUBJECT = re.compile(
    r"^(?:the|a|an|another|this|that)\s+(?:\w+\s+){0,3}?(?:vehicle|car|truck|bus|van|cyclist|bicyclist|bike|"
    r"motorcycle|pedestrian|person|people|child|traffic|light|signal|lane|road|curve|bend|intersection|crosswalk|"
    r"sign|lead|leading|object|obstacle|barrier|cone|construction|vehicles|cars|pedestrians)s?\b(?!\s+ahead\s+and)"
    r"|^(?:it|they|he|she|traffic|pedestrians|vehicles|cars)\b"
)
_EGO_SUBJECT = re.compile(r"^(?:i|we|ego|the\s+ego(?:\s+vehicle)?|our\s+vehicle|my\s+vehicle)\b")
_CLAUSE_SPLIT = re.compile(
    r"(?<=[.!?;])\s+|\s*;\s*|,?\s+(?=(?:so|therefore|thus|hence|because|since|as|while|but|then|and\s+then)\b)"
)
_DECISION_CUE = re.compile(r"\b(?:so|therefore|thus|hence|must|should|need\s+to|needs\s+to|have\s+to|has\s+to|will)\b")


def _clauses(text: str) -> list[str]:
    parts = [p.strip(" ,.!?").lower() for p in _CLAUSE_SPLIT.split(text)]
    return [p for p in parts if p]


def _is_evidence(clause: str) -> bool:
    if _EVIDENCE_LEAD.match(clause):
        return True
    stripped = re.sub(r"^(?:so|therefore|thus|hence|then|and\s+then|but)\s+", "", clause)
    return bool(_AGENT_SUBJECT.match(stripped)) and not _EGO_SUBJECT.match(stripped)


def _find(clause: str, patterns: tuple[tuple[enum.IntEnum, str], ...]) -> list[enum.IntEnum]:
    """Decisions stated positively in one clause, in pattern (priority) order."""
    masked = _NOUN_MASK.sub(lambda m: " " * len(m.group(0)), clause)
    found: list[enum.IntEnum] = []
    for value, pattern in patterns:
        for match in re.finditer(pattern, masked):
            if not _NEGATION.search(masked[: match.start()]):
                found.append(value)
                break
    return found


def parse_decision(text: str) -> Decision:
    """The decision a Chain-of-Causation states (see the module rules); UNKNOWN per axis when none."""
    clauses = _clauses(text)
    ego = [c for c in clauses if not _is_evidence(c)]
    evidence = [c for c in clauses if _is_evidence(c)]

    def pick(patterns: tuple[tuple[enum.IntEnum, str], ...], unknown: enum.IntEnum) -> enum.IntEnum:
        for group in (ego, evidence):
            hits = [v for c in group for v in _find(c, patterns)]
            if hits:
                order = [v for v, _ in patterns]
                return min(hits, key=order.index)
        return unknown

    lon = pick(LONGITUDINAL_PATTERNS, Longitudinal.UNKNOWN)  # type: ignore[arg-type]
    lat = pick(LATERAL_PATTERNS, Lateral.UNKNOWN)  # type: ignore[arg-type]
    return Decision(Longitudinal(lon), Lateral(lat))


def split_steps(text: str) -> list[tuple[StepRole, str]]:
    """Split reasoning into causal steps, verbatim text, in order: evidence, decision (a stated conclusion with
    "so/must/should/..."), action (a bare manoeuvre); UNKNOWN where no rule applies."""
    pieces = [p.strip() for p in re.split(r"(?<=[.!?;])\s+|,?\s+(?=(?:so|therefore|because|since)\b)", text)]
    steps: list[tuple[StepRole, str]] = []
    for piece in pieces:
        if not piece.strip(" .,;"):
            continue
        lowered = piece.strip(" ,.!?;").lower()
        has_decision = bool(_find(lowered, LONGITUDINAL_PATTERNS) or _find(lowered, LATERAL_PATTERNS))  # type: ignore[arg-type]
        if _is_evidence(lowered):
            role = StepRole.EVIDENCE
        elif has_decision and _DECISION_CUE.search(lowered):
            role = StepRole.DECISION
        elif has_decision:
            role = StepRole.ACTION
        elif re.search(r"\b(?:is|are|was|were|has|have)\b", lowered):
            role = StepRole.EVIDENCE
        else:
            role = StepRole.UNKNOWN
        steps.append((role, piece))
    return steps


# --- 2. Trajectory rules ---------------------------------------------------------------------------------------


MONOTONIC_HEADING_TOL_RAD = 0.02  # heading noise tolerated in a one-way turn (~1 degree)


@dataclass(frozen=True)
class TrajectoryThresholds:
    stop_speed_mps: float = 0.5
    speed_change_mps: float = 1.0
    speed_change_ratio: float = 0.15
    min_travel_m: float = 1.0
    turn_heading_rad: float = 0.2  # ~11 degrees over the 6.4 s horizon: a bend the lane itself makes
    lane_change_offset_m: float = 2.5
    nudge_offset_m: float = 0.4
    yield_creep_speed_mps: float = 3.0


@dataclass(frozen=True)
class TrajectoryFacts:
    """Kinematics the classification used (reported in the agreement detail)."""

    initial_speed_mps: float
    final_speed_mps: float
    min_speed_mps: float
    final_lateral_m: float  # y of the last waypoint in the t0 frame
    max_lateral_m: float  # signed y of largest magnitude
    heading_change_rad: float
    travel_m: float
    final_residual_m: float = 0.0  # signed offset of the last waypoint from the constant-curvature arc
    max_residual_m: float = 0.0  # signed residual of largest magnitude


def trajectory_facts(
    xyz: npt.ArrayLike, initial_speed_mps: float | None = None, step_sec: float = STEP_SEC
) -> TrajectoryFacts:
    """Kinematics of (N, 3) waypoints in the t0 ego frame, waypoint i at (i+1)*step after t0 (origin at t0)."""
    pts = np.asarray(xyz, dtype=np.float64)[:, :2]
    path = np.vstack([np.zeros((1, 2)), pts])
    seg = np.diff(path, axis=0)
    speeds = np.linalg.norm(seg, axis=1) / step_sec
    tail = max(1, min(5, len(speeds) // 4))
    v0 = float(speeds[0]) if initial_speed_mps is None else float(initial_speed_mps)
    moving = np.linalg.norm(seg, axis=1) > 1e-3
    if moving.any():
        last = seg[np.nonzero(moving)[0][-1]]
        heading = float(np.arctan2(last[1], last[0]))
    else:
        heading = 0.0
    lat = pts[:, 1]
    i_max = int(np.argmax(np.abs(lat)))
    arc_s = np.cumsum(np.linalg.norm(seg, axis=1))
    travel = float(arc_s[-1]) if len(arc_s) else 0.0
    residual = _arc_residuals(pts, arc_s, heading / travel if travel > 1e-6 else 0.0)
    if moving.any() and _heading_reversal(seg[moving], heading) <= MONOTONIC_HEADING_TOL_RAD:
        residual = _outside_band(residual, lat)
    j_max = int(np.argmax(np.abs(residual)))
    return TrajectoryFacts(
        initial_speed_mps=v0,
        final_speed_mps=float(np.mean(speeds[-tail:])),
        min_speed_mps=float(np.min(speeds)),
        final_lateral_m=float(lat[-1]),
        max_lateral_m=float(lat[i_max]),
        heading_change_rad=heading,
        travel_m=travel,
        final_residual_m=float(residual[-1]),
        max_residual_m=float(residual[j_max]),
    )


def _arc_residuals(
    pts: npt.NDArray[np.float64], arc_s: npt.NDArray[np.float64], curvature: float
) -> npt.NDArray[np.float64]:
    """Signed offsets (left +) of each point from the arc of constant curvature through the origin (heading 0).

    The arc point is taken at the same travelled distance as the waypoint; the offset is measured along the arc's
    normal there.
    """
    theta = curvature * arc_s
    if abs(curvature) > 1e-9:
        arc_x, arc_y = np.sin(theta) / curvature, (1.0 - np.cos(theta)) / curvature
    else:
        arc_x, arc_y = arc_s, np.zeros_like(arc_s)
    dx, dy = pts[:, 0] - arc_x, pts[:, 1] - arc_y
    return np.asarray(-np.sin(theta) * dx + np.cos(theta) * dy, dtype=np.float64)


def _heading_reversal(moving_seg: npt.NDArray[np.float64], final_heading: float) -> float:
    """How far (rad) the heading ever turns back against the direction of its overall change."""
    headings = np.unwrap(np.arctan2(moving_seg[:, 1], moving_seg[:, 0]))
    toward = headings if final_heading >= 0.0 else -headings
    return float(np.max(np.maximum.accumulate(toward) - toward))


def _outside_band(
    arc_residual: npt.NDArray[np.float64], straight_residual: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Offsets beyond the band between the straight and the constant-curvature references (0 inside it)."""
    nearer = np.where(np.abs(arc_residual) < np.abs(straight_residual), arc_residual, straight_residual)
    return np.asarray(np.where(arc_residual * straight_residual <= 0.0, 0.0, nearer), dtype=np.float64)


def classify_facts(facts: TrajectoryFacts, th: TrajectoryThresholds = TrajectoryThresholds()) -> Decision:
    v0, v1 = facts.initial_speed_mps, facts.final_speed_mps
    change = max(th.speed_change_mps, th.speed_change_ratio * v0)
    if v1 < th.stop_speed_mps:
        lon = Longitudinal.STOP
    elif v1 < v0 - change:
        lon = Longitudinal.DECELERATE
    elif v1 > v0 + change:
        lon = Longitudinal.ACCELERATE
    else:
        lon = Longitudinal.KEEP_SPEED
    if facts.travel_m < th.min_travel_m:
        lat = Lateral.UNKNOWN
    elif abs(facts.heading_change_rad) > th.turn_heading_rad:
        lat = Lateral.TURN_LEFT if facts.heading_change_rad > 0 else Lateral.TURN_RIGHT
    elif abs(facts.final_residual_m) > th.lane_change_offset_m:
        lat = Lateral.LANE_CHANGE_LEFT if facts.final_residual_m > 0 else Lateral.LANE_CHANGE_RIGHT
    elif abs(facts.max_residual_m) > th.nudge_offset_m:
        lat = Lateral.NUDGE_LEFT if facts.max_residual_m > 0 else Lateral.NUDGE_RIGHT
    else:
        lat = Lateral.KEEP_LANE
    return Decision(lon, lat)


def classify_trajectory(
    xyz: npt.ArrayLike, initial_speed_mps: float | None = None, th: TrajectoryThresholds = TrajectoryThresholds()
) -> Decision:
    """The decision a trajectory shows (see the module rules)."""
    return classify_facts(trajectory_facts(xyz, initial_speed_mps), th)


# --- 3. Compatibility ------------------------------------------------------------------------------------------

_LON = Longitudinal
_LAT = Lateral
# stated -> trajectory classes that agree with it
LONGITUDINAL_COMPATIBLE: dict[Longitudinal, frozenset[Longitudinal]] = {
    _LON.STOP: frozenset({_LON.STOP, _LON.DECELERATE}),  # a stop beyond the 6.4 s horizon shows as decelerating
    _LON.YIELD: frozenset({_LON.STOP, _LON.DECELERATE}),  # plus KEEP_SPEED while creeping: see compare()
    _LON.DECELERATE: frozenset({_LON.DECELERATE, _LON.STOP}),
    _LON.FOLLOW: frozenset({_LON.STOP, _LON.DECELERATE, _LON.KEEP_SPEED, _LON.ACCELERATE}),  # the lead decides
    _LON.KEEP_SPEED: frozenset({_LON.KEEP_SPEED}),
    _LON.ACCELERATE: frozenset({_LON.ACCELERATE}),
}
LATERAL_COMPATIBLE: dict[Lateral, frozenset[Lateral]] = {
    # keeping a lane includes following its curves and small in-lane offsets
    _LAT.KEEP_LANE: frozenset({_LAT.KEEP_LANE, _LAT.NUDGE_LEFT, _LAT.NUDGE_RIGHT, _LAT.TURN_LEFT, _LAT.TURN_RIGHT}),
    _LAT.NUDGE_LEFT: frozenset({_LAT.NUDGE_LEFT, _LAT.KEEP_LANE, _LAT.LANE_CHANGE_LEFT, _LAT.TURN_LEFT}),
    _LAT.NUDGE_RIGHT: frozenset({_LAT.NUDGE_RIGHT, _LAT.KEEP_LANE, _LAT.LANE_CHANGE_RIGHT, _LAT.TURN_RIGHT}),
    _LAT.LANE_CHANGE_LEFT: frozenset({_LAT.LANE_CHANGE_LEFT, _LAT.NUDGE_LEFT, _LAT.TURN_LEFT}),
    _LAT.LANE_CHANGE_RIGHT: frozenset({_LAT.LANE_CHANGE_RIGHT, _LAT.NUDGE_RIGHT, _LAT.TURN_RIGHT}),
    _LAT.TURN_LEFT: frozenset({_LAT.TURN_LEFT, _LAT.LANE_CHANGE_LEFT, _LAT.NUDGE_LEFT}),
    _LAT.TURN_RIGHT: frozenset({_LAT.TURN_RIGHT, _LAT.LANE_CHANGE_RIGHT, _LAT.NUDGE_RIGHT}),
}


def _name(value: enum.IntEnum) -> str:
    return value.name.lower().replace("_", " ")


@dataclass(frozen=True)
class ConsistencyReport:
    stated: Decision
    shown: Decision
    agreement: Agreement
    detail: str


def _creeping_yield(stated: Decision, shown: Decision, facts: TrajectoryFacts | None, th: TrajectoryThresholds) -> bool:
    """Yielding by creeping on at a walking pace shows as KEEP_SPEED; only a known low speed qualifies."""
    return (
        stated.longitudinal is Longitudinal.YIELD
        and shown.longitudinal is Longitudinal.KEEP_SPEED
        and facts is not None
        and facts.final_speed_mps <= th.yield_creep_speed_mps
    )


def compare(
    stated: Decision,
    shown: Decision,
    facts: TrajectoryFacts | None = None,
    th: TrajectoryThresholds = TrajectoryThresholds(),
) -> tuple[Agreement, str]:
    """Agreement of a stated and a shown decision, with a human-readable reason."""
    verdicts: list[tuple[bool, str]] = []
    notes: list[str] = []
    kin = (
        f"{facts.initial_speed_mps:.1f} -> {facts.final_speed_mps:.1f} m/s, lateral {facts.final_lateral_m:+.1f} m, "
        f"heading {np.degrees(facts.heading_change_rad):+.0f} deg"
        if facts is not None
        else ""
    )
    if stated.longitudinal and shown.longitudinal:
        ok = shown.longitudinal in LONGITUDINAL_COMPATIBLE[stated.longitudinal] or _creeping_yield(
            stated, shown, facts, th
        )
        verdicts.append((ok, f"says {_name(stated.longitudinal)}, trajectory shows {_name(shown.longitudinal)}"))
    elif not stated.longitudinal:
        notes.append("no longitudinal decision stated")
    if stated.lateral and shown.lateral:
        ok = shown.lateral in LATERAL_COMPATIBLE[stated.lateral]
        verdicts.append((ok, f"says {_name(stated.lateral)}, trajectory shows {_name(shown.lateral)}"))
    elif not stated.lateral:
        notes.append("no lateral decision stated")
    elif not shown.lateral:
        notes.append("trajectory too short to judge lateral")
    bad = [text for ok, text in verdicts if not ok]
    if bad:
        agreement, parts = Agreement.DISAGREE, bad
    elif verdicts:
        agreement, parts = Agreement.AGREE, [text for _, text in verdicts]
    else:
        agreement, parts = Agreement.UNKNOWN, notes or ["nothing to compare"]
    detail = "; ".join(parts)
    return agreement, f"{detail} ({kin})" if kin else detail


def check_consistency(
    reasoning: str,
    xyz: npt.ArrayLike,
    initial_speed_mps: float | None = None,
    th: TrajectoryThresholds = TrajectoryThresholds(),
) -> ConsistencyReport:
    """Parse, classify, compare: the monitor in one call."""
    stated = parse_decision(reasoning)
    facts = trajectory_facts(xyz, initial_speed_mps)
    shown = classify_facts(facts, th)
    agreement, detail = compare(stated, shown, facts, th)
    return ConsistencyReport(stated, shown, agreement, detail)
