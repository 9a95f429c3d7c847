"""Diagnostics bookkeeping and status derivation for the planning node. Plain data, no rclpy, no messages.

The node counts what happens to its inputs and plans in ``StreamStats`` / ``PlanningStats`` and, on its
diagnostics timer, turns them into one ``Status`` per item (model, planning, odometry, one per camera) with the
functions below; it only wraps each ``Status`` into a ``diagnostic_msgs/DiagnosticStatus`` (``bytes([level])``,
``KeyValue(key, str(value))`` in the order given here) and publishes. ``Throttle`` rate-limits log lines per key.

Times: stamps and ``now_ns`` are ROS time in nanoseconds (node clock); ages are reported in milliseconds.
"""

from __future__ import annotations

import collections
import enum
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from alpamayo_ros.core.param_fields import param
from alpamayo_ros.core.types import ModelInfo

RATE_WINDOW = 30  # stamps kept per stream for the rate estimate
RECENT_ERROR_NS = 2_000_000_000  # a stream error this recent keeps the stream at WARN


@dataclass(frozen=True)
class DiagnosticsParams:
    """The node's ``diagnostics.*`` parameters."""

    period_sec: float = param(1.0, "/diagnostics publishing period", min_value=0.05, max_value=60.0)
    uncertainty_warn: float = param(
        0.1,
        "a plan whose reasoning_uncertainty is above this is flagged: planning status WARN and a throttled log line "
        "(0.1 flags about 5 % of the default driver's right in-distribution decisions and 41 % of its wrong ones, "
        "25 % or fewer of its wrong ones off distribution: docs/generalisation.md; 1.0: never)",
        min_value=0.0,
        max_value=1.0,
        when="live",
    )


class ModelState(enum.Enum):
    """Where the node's model is; the value is what diagnostics report."""

    UNCONFIGURED = "unconfigured"
    LOADING = "loading"
    READY = "ready"
    ERROR = "error"


class Lifecycle(enum.Enum):
    """The node's lifecycle state (REP 2002 primary states); the value is what diagnostics report."""

    UNCONFIGURED = "unconfigured"
    INACTIVE = "inactive"
    ACTIVE = "active"
    FINALIZED = "finalized"


class Level(enum.IntEnum):
    """Diagnostic level; the values are diagnostic_msgs/DiagnosticStatus's (OK=0, WARN=1, ERROR=2, STALE=3)."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class Status(NamedTuple):
    """One diagnostic item: level, one-line message, key -> value (published as ``str(value)``, in order)."""

    level: Level
    message: str
    values: dict[str, Any]


@dataclass
class StreamStats:
    """Arrival statistics of one input stream (camera or odometry)."""

    received: int = 0
    rejected: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    last_stamp_ns: int | None = None
    last_error: str = ""
    last_error_stamp_ns: int | None = None
    size_wh: tuple[int, int] | None = None
    stamps: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=RATE_WINDOW))

    def delivery(self) -> float | None:
        """Share of the stream's messages that arrived, over the last ``RATE_WINDOW`` accepted stamps: the stamps'
        span divided by their median spacing gives how many were sent (None before three stamps).

        A best-effort camera topic over default DDS settings loses large frames silently; this makes it visible.
        """
        if len(self.stamps) < 3:
            return None
        ordered = sorted(self.stamps)
        gaps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
        if not gaps:
            return None
        period = sorted(gaps)[len(gaps) // 2]
        sent = round((ordered[-1] - ordered[0]) / period) + 1
        return min(1.0, len(ordered) / sent)

    def rate_hz(self) -> float:
        """Message rate over the last ``RATE_WINDOW`` accepted stamps (message time, not arrival time)."""
        if len(self.stamps) < 2:
            return 0.0
        span_ns = max(self.stamps) - min(self.stamps)
        return (len(self.stamps) - 1) * 1e9 / span_ns if span_ns > 0 else 0.0

    def error(self, stamp_ns: int | None, text: str) -> None:
        """A rejected message: counted, and its reason kept as the stream's last error.

        The error is timed by the message's stamp when that lies within ``RECENT_ERROR_NS`` of the stream's newest
        accepted stamp, else by that newest stamp: a stamp that is itself the problem (zero, seconds behind, far in
        the future) would otherwise never hold the stream at WARN, or hold it there until the clock catches up.
        """
        self.rejected += 1
        self.last_error = text
        newest = self.last_stamp_ns
        plausible = newest is None or (stamp_ns is not None and abs(stamp_ns - newest) <= RECENT_ERROR_NS)
        self.last_error_stamp_ns = stamp_ns if plausible else newest

    def accepted(self, stamp_ns: int, *, time_jumped_back: bool = False) -> None:
        """A buffered message: feeds the rate; the newest stamp only grows unless time jumped back."""
        self.stamps.append(stamp_ns)
        self.last_stamp_ns = stamp_ns if time_jumped_back else max(self.last_stamp_ns or 0, stamp_ns)


@dataclass
class PlanningStats:
    """Counters and last outcomes of the planning loop (ticks, failures by kind, published plans)."""

    ticks: int = 0
    skipped_busy: int = 0
    no_new_sample: int = 0
    sync_failures: int = 0
    stale_samples: int = 0
    ego_failures: int = 0
    model_failures: int = 0
    discarded: int = 0
    published: int = 0
    flushes: int = 0
    last_failure: str = ""
    last_publish_wall: float = 0.0
    last_t0_ns: int = 0
    last_planned_t0_ns: int = 0
    last_failure_key: tuple[int, str] = (0, "")  # (t0, kind) of the last failure counted
    generation: int = 0  # the intake generation the counters above refer to
    last_stage_ms: dict[str, float] = field(default_factory=dict)
    last_publish_age_ms: float = 0.0  # node clock at publication minus t0: how old the plan was when it went out
    last_agreement: str = ""
    last_uncertainty: float = math.nan  # reasoning_uncertainty of the last published plan (sample 0)
    uncertain_plans: int = 0  # published plans flagged uncertain
    last_spread_m: float = math.nan  # the last plan's trajectory samples' spread around it (m; NaN: one sample)
    last_filled: str = ""
    last_warnings: str = ""

    def first_failure(self, t0_ns: int | None, kind: str = "") -> bool:
        """True the first time a given anchor frame fails in a given way (counted and logged once, retried on later
        ticks): a frame that first fails sync and later ego history reports both reasons."""
        key = (-1 if t0_ns is None else t0_ns, kind)
        if key == self.last_failure_key:
            return False
        self.last_failure_key = key
        return True

    def plan_failed(self, *, model_failure: bool) -> None:
        """Count a job that produced no plan: model failures (raised, bad output) apart from input ones."""
        if model_failure:
            self.model_failures += 1
        else:
            self.sync_failures += 1

    def published_plan(
        self, agreement: str, wall_sec: float, uncertainty: float, *, uncertain: bool, spread_m: float = math.nan
    ) -> None:
        """A plan went out: clears the last failure (planning status back to OK). spread_m: how far the other
        trajectory samples lie from the plan (``core.sample_choice.plan_spread_m``), NaN with one sample."""
        self.published += 1
        self.last_publish_wall = wall_sec
        self.last_failure = ""
        self.last_agreement = agreement
        self.last_uncertainty = uncertainty
        self.uncertain_plans += uncertain
        self.last_spread_m = spread_m


class Throttle:
    """One log line per key per period (rclpy's throttling is per call site, not per message)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def ready(self, key: str, period_sec: float) -> bool:
        """True (and the period restarts) if ``key`` was not ready within the last ``period_sec`` seconds."""
        now = self._clock()
        if now - self._last.get(key, -1e18) >= period_sec:
            self._last[key] = now
            return True
        return False


# --- status derivation -------------------------------------------------------------------------------------------


def stream_values(stats: StreamStats, now_ns: int) -> dict[str, Any]:
    """The values every stream reports: rate, age of the newest stamp (ms, "" before any), counters, last error."""
    age = "" if stats.last_stamp_ns is None else f"{(now_ns - stats.last_stamp_ns) / 1e6:.0f}"
    delivery = stats.delivery()
    return {
        "rate_hz": f"{stats.rate_hz():.1f}",
        "delivery_pct": "" if delivery is None else f"{100 * delivery:.0f}",
        "age_ms": age,
        "received": stats.received,
        "rejected": stats.rejected,
        "duplicates": stats.duplicates,
        "out_of_order": stats.out_of_order,
        "last_error": stats.last_error,
    }


def stream_level(stats: StreamStats, now_ns: int, max_age_sec: float) -> tuple[Level, str]:
    """WARN when silent, stale (newest stamp older than ``max_age_sec``) or with an error in the last 2 s; else OK."""
    if stats.last_stamp_ns is None:
        return Level.WARN, "no messages"
    age_sec = (now_ns - stats.last_stamp_ns) / 1e9
    if age_sec > max_age_sec:
        return Level.WARN, f"stale: last message {age_sec:.2f} s old"
    recent = stats.last_error_stamp_ns is not None and now_ns - stats.last_error_stamp_ns < RECENT_ERROR_NS
    if recent:
        return Level.WARN, stats.last_error
    return Level.OK, f"{stats.rate_hz():.1f} Hz"


def camera_status(
    stats: StreamStats, now_ns: int, max_age_sec: float, *, topic: str, message_type: str, used_by_model: bool
) -> Status:
    """One camera stream: stream values plus its topic, message type, whether the model uses it, and image size."""
    values = stream_values(stats, now_ns)
    values.update(topic=topic, message_type=message_type, used_by_model=used_by_model)
    if stats.size_wh is not None:
        values["size"] = f"{stats.size_wh[0]}x{stats.size_wh[1]}"
    level, message = stream_level(stats, now_ns, max_age_sec)
    return Status(level, message, values)


def odometry_status(stats: StreamStats, now_ns: int, max_age_sec: float, *, frame_id: str) -> Status:
    """The odometry stream: stream values plus the odometry frame id."""
    level, message = stream_level(stats, now_ns, max_age_sec)
    values = stream_values(stats, now_ns)
    values["frame_id"] = frame_id
    return Status(level, message, values)


def model_status(
    state: ModelState, lifecycle: Lifecycle, error: str, *, backend: str, model_path: str, info: ModelInfo | None
) -> Status:
    """The model: ERROR with the reason after a failed load, OK when ready, WARN while loading.

    Args:
        state: where the model is.
        lifecycle: the node's lifecycle state (reported as a value only).
        error: the reason of the last failure (used when ``state`` is "error").
        backend: configured backend, reported.
        model_path: configured model path, reported.
        info: the loaded model's info, or None when no model is loaded.
    """
    values: dict[str, Any] = {
        "state": state.value,
        "lifecycle": lifecycle.value,
        "backend": backend,
        "model_path": model_path,
    }
    if info is not None:
        values.update(name=info.name, version=info.version, untrained=info.untrained, cameras=",".join(info.cameras))
    if state is ModelState.ERROR:
        return Status(Level.ERROR, f"error: {error}", values)
    if state is ModelState.READY:
        return Status(Level.OK, "ready", values)
    return Status(Level.WARN if state is ModelState.LOADING else Level.OK, state.value, values)


def planning_status(plan: PlanningStats, lifecycle: Lifecycle, uncertainty_warn: float = 1.0) -> Status:
    """The planning loop: OK while inactive or planning; WARN with the first line of the last failure, while
    waiting for the first plan, or while the last plan's reasoning_uncertainty is above ``uncertainty_warn``.
    Values: counters, last t0, filled cameras, agreement, uncertainty, the samples' spread around the plan (with
    model.num_samples > 1), last stage times (ms)."""
    last_failure = plan.last_failure.splitlines()[0] if plan.last_failure else ""
    values: dict[str, Any] = {
        "plans_published": plan.published,
        "ticks": plan.ticks,
        "skipped_ticks_busy": plan.skipped_busy,
        "sync_failures": plan.sync_failures,
        "stale_samples": plan.stale_samples,
        "ego_history_failures": plan.ego_failures,
        "model_failures": plan.model_failures,
        "discarded_results": plan.discarded,
        "buffer_flushes": plan.flushes,
        "last_t0_sec": f"{plan.last_t0_ns / 1e9:.3f}",
        "last_failure": last_failure,
        "filled_cameras": plan.last_filled,
        "camera_warnings": plan.last_warnings,
        "agreement": plan.last_agreement,
        "reasoning_uncertainty": f"{plan.last_uncertainty:.3f}",
        "uncertain_plans": plan.uncertain_plans,
        "trajectory_spread_m": f"{plan.last_spread_m:.2f}",
        "last_plan_age_ms": f"{plan.last_publish_age_ms:.0f}",
    }
    values.update({k: f"{v:.1f}" for k, v in plan.last_stage_ms.items()})
    if lifecycle is not Lifecycle.ACTIVE:
        return Status(Level.OK, f"not active ({lifecycle.value})", values)
    if plan.last_failure:
        return Status(Level.WARN, last_failure, values)
    if plan.published == 0:
        return Status(Level.WARN, "waiting for the first complete sample", values)
    if plan.last_uncertainty > uncertainty_warn:
        return Status(Level.WARN, f"uncertain reasoning: {plan.last_uncertainty:.2f} > {uncertainty_warn:g}", values)
    return Status(Level.OK, "planning", values)
