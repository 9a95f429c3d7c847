"""The planning tick, without ROS: pick the sample to plan on, then plan once. The node, the offline evaluation and
the closed-loop simulator all call these two functions, so they plan on the same data in the same way.

1. ``select_job(intake, now_ns, ...)`` runs the checklist on the buffered inputs (time went back? a complete
   synchronized sample? a new one? fresh? ego history?) and returns a ``PlanJob`` or a ``Skip`` with the reason,
   counting each outcome in ``PlanningStats``. Cheap: nothing is decoded.
2. ``plan_once(job, model, plan_choice)`` decodes and resizes the frames the model reads, runs the model, applies
   the output sanity gate, puts the sample to plan on first (``core.sample_choice``) and runs the reasoning-action
   consistency monitor, and returns a ``PlanResult``: the checked prediction and one consistency report per
   sample, or the typed reason there is none. It never raises for a bad frame, a model failure or a bad output. No
   ROS types: the node turns a result into messages (``nodes.plan_messages``).

Frames: the plan is in the t0 ego frame (x forward, y left, z up), waypoint i at t0 + (i+1) * 0.1 s.
"""

from __future__ import annotations

import enum
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alpamayo_ros.core.decisions import ConsistencyReport, check_consistency
from alpamayo_ros.core.diagnostics import PlanningStats
from alpamayo_ros.core.ego_history import EgoHistoryFailure, EgoHistoryResult, EgoParams, build_ego_history
from alpamayo_ros.core.images import compressed_to_rgb, raw_to_rgb
from alpamayo_ros.core.intake import InputIntake
from alpamayo_ros.core.param_fields import param
from alpamayo_ros.core.rig import CAMERA_NAMES, FUTURE_STEPS, HISTORY_STEPS, STEP_SEC
from alpamayo_ros.core.sample_choice import PLAN_CHOICES, choose_plan
from alpamayo_ros.core.sync import (
    FrameEntry,
    ImageAssemblyError,
    SyncConfig,
    SyncedSample,
    SyncFailure,
    SyncParams,
    assemble_images,
)
from alpamayo_ros.core.types import DrivingModel, EgoHistory, ModelInfo, ModelInput, Prediction, UInt8Array

DEFAULT_WARMUP_SIZE_HW = (320, 576)  # warm-up frame size for models that resize frames themselves


@dataclass(frozen=True)
class PlanningParams:
    """When the node plans (the top-level ``planning_rate_hz`` and ``max_sample_age_sec`` parameters)."""

    planning_rate_hz: float = param(
        10.0, "planning timer rate; ticks while an inference runs are skipped", min_value=0.1, max_value=100.0
    )
    max_sample_age_sec: float = param(
        0.5,
        "never plan on a sample whose t0 is older than this (node clock)",
        min_value=0.01,
        max_value=10.0,
        when="live",
    )
    plan_choice: str = param(
        "medoid",
        "with model.num_samples > 1, the sample planned on: medoid (the trajectory closest to the other samples', "
        "damping the sampling noise from tick to tick) or first (the first draw)",
        choices=PLAN_CHOICES,
    )


class SkipKind(enum.Enum):
    """Why a tick planned nothing; the value is the diagnostics/log key."""

    NO_SAMPLE = "sync"
    NOT_NEW = "not_new"
    NO_CLOCK = "clock"
    STALE = "stale"
    NO_EGO_HISTORY = "ego"


@dataclass(frozen=True)
class Skip:
    """No job this tick. ``report`` is False for a repeat of an anchor frame's failure already reported."""

    kind: SkipKind
    reason: str
    t0_ns: int | None
    report: bool = True


@dataclass(frozen=True)
class PlanJob:
    """Everything ``plan_once`` needs; built from the buffers at one tick."""

    sample: SyncedSample
    ego: EgoHistoryResult
    generation: int  # the intake's generation: results of an older one are dropped
    select_ms: float
    extra_frame: FrameEntry | None = None  # a frame the caller asked for (the overlay camera's), undecoded
    started: float = field(default_factory=time.perf_counter)

    @property
    def t0_ns(self) -> int:
        return self.sample.t0_ns


class FailureKind(enum.Enum):
    INPUT = "input"  # a frame chosen for the sample could not be decoded / assembled
    MODEL = "model"  # the model raised
    OUTPUT = "output"  # the model's output failed the sanity gate


@dataclass(frozen=True)
class PlanFailure:
    """Why a job produced no plan; an input failure names the camera and frame stamp it came from."""

    kind: FailureKind
    text: str
    camera: str | None = None
    stamp_ns: int | None = None


@dataclass(frozen=True)
class PlanResult:
    """What ``plan_once`` returns: a checked prediction with one consistency report per sample, or the failure.

    ``stage_ms``: wall times of the stages reached (select, images, inference, processing = the whole step), ms.
    """

    t0_ns: int
    generation: int
    prediction: Prediction | None
    reports: tuple[ConsistencyReport, ...]
    failure: PlanFailure | None
    stage_ms: dict[str, float]


def sync_config(sync: SyncParams, info: ModelInfo) -> SyncConfig:
    """The synchroniser settings for a model: all rig cameras, the model's cameras required at its frame offsets."""
    return SyncConfig(
        cameras=CAMERA_NAMES,
        required=tuple(info.cameras),
        frame_offsets_sec=tuple(info.frame_offsets_sec),
        params=sync,
    )


def select_job(
    intake: InputIntake,
    now_ns: int,
    stats: PlanningStats,
    *,
    planning: PlanningParams,
    ego: EgoParams,
    backwards_jump_sec: float,
    extra_camera: str | None = None,
) -> PlanJob | Skip:
    """The tick's checklist of early returns; counts every outcome in ``stats``.

    Args:
        intake: the buffered inputs (configured).
        now_ns: the node clock (ROS time, ns); inputs buffered further ahead of it than ``backwards_jump_sec`` and
            the intake's ``max_future_stamp_sec`` mean the clock went back: they are flushed.
        stats: the planning counters (``last_planned_t0_ns`` keeps one plan per anchor frame).
        planning: sample age limit.
        ego: ego-history interpolation limits.
        backwards_jump_sec: see ``now_ns``.
        extra_camera: a camera whose frame at t0 the job should carry (the overlay's), or None.
    """
    stats.ticks += 1
    if intake.sync is None:
        raise RuntimeError("select_job on an intake that is not configured")
    started = time.perf_counter()
    newest_ns = intake.newest_stamp_ns()
    # inputs are refused beyond max_future_stamp_sec ahead of the clock, so buffered ones further ahead than that
    # (and than backwards_jump_sec) were taken before the clock went back
    ahead_limit_ns = int(max(backwards_jump_sec, intake.limits.max_future_stamp_sec) * 1e9)
    if now_ns > 0 and newest_ns is not None and newest_ns - now_ns > ahead_limit_ns:
        intake.flush(f"node clock at {now_ns / 1e9:.3f} s, inputs buffered up to {newest_ns / 1e9:.3f} s")
    if stats.generation != intake.generation:  # a flush: the new timeline starts with nothing planned
        stats.generation = intake.generation
        stats.flushes = intake.flushes
        stats.last_planned_t0_ns = 0
    selected = intake.sync.select()
    if isinstance(selected, SyncFailure):
        # the same anchor frame may complete on a later tick (a slower camera): retried, reported once
        first = stats.first_failure(selected.t0_ns, SkipKind.NO_SAMPLE.value)
        stats.sync_failures += first
        return Skip(SkipKind.NO_SAMPLE, f"sync failed: {selected.summary()}", selected.t0_ns, first)
    t0_ns = selected.t0_ns
    stats.last_t0_ns = t0_ns
    if t0_ns <= stats.last_planned_t0_ns:
        stats.no_new_sample += 1
        return Skip(SkipKind.NOT_NEW, "no new sample since the last plan", t0_ns, report=False)
    if now_ns <= 0:
        return Skip(SkipKind.NO_CLOCK, "node clock is zero (use_sim_time without /clock?)", t0_ns)
    age_ns = now_ns - t0_ns
    if abs(age_ns) > planning.max_sample_age_sec * 1e9:
        first = stats.first_failure(t0_ns, SkipKind.STALE.value)
        stats.stale_samples += first
        reason = (
            f"sample t0 {t0_ns / 1e9:.3f} s is {age_ns / 1e9:+.3f} s from the node clock "
            f"(max_sample_age_sec {planning.max_sample_age_sec})"
        )
        return Skip(SkipKind.STALE, reason, t0_ns, first)
    history = build_ego_history(intake.odometry, t0_ns, ego)
    if isinstance(history, EgoHistoryFailure):
        first = stats.first_failure(t0_ns, SkipKind.NO_EGO_HISTORY.value)
        stats.ego_failures += first
        return Skip(SkipKind.NO_EGO_HISTORY, history.reason, t0_ns, first)
    stats.last_filled = ", ".join(f"{c} ({r})" for c, r in selected.filled.items())
    stats.last_warnings = "; ".join(f"{w.camera}: {w.reason}" for w in selected.warnings)
    stats.last_planned_t0_ns = t0_ns
    extra = intake.sync.frame_at(extra_camera, t0_ns) if extra_camera is not None else None
    return PlanJob(
        sample=selected,
        ego=history,
        generation=intake.generation,
        select_ms=(time.perf_counter() - started) * 1e3,
        extra_frame=extra,
    )


def decode_frame(payload: Any) -> UInt8Array:
    """A buffered camera message (Image or CompressedImage, rclpy or rosbags) -> (H, W, 3) uint8 RGB."""
    if hasattr(payload, "format"):
        return compressed_to_rgb(payload.format, payload.data)
    return raw_to_rgb(payload.encoding, payload.height, payload.width, payload.step, payload.data)


def check_prediction(pred: Prediction) -> str | None:
    """Sanity gate on model output: shapes and finiteness. Returns the reason it is unusable, or None."""
    if pred.num_samples < 1:
        return "model returned no samples"
    if pred.xyz.shape[1:] != (FUTURE_STEPS, 3) or pred.rotation.shape[1:] != (FUTURE_STEPS, 3, 3):
        return f"model output shapes {pred.xyz.shape} / {pred.rotation.shape}, expected (S, 64, 3) / (S, 64, 3, 3)"
    if not (np.all(np.isfinite(pred.xyz)) and np.all(np.isfinite(pred.rotation))):
        return "model output contains NaN/Inf"
    if len(pred.reasoning) != pred.num_samples:
        return f"{len(pred.reasoning)} reasoning texts for {pred.num_samples} samples"
    return None


def plan_once(job: PlanJob, model: DrivingModel, plan_choice: str) -> PlanResult:
    """Decode/resize the job's frames, run the model, check its output, put the plan sample first
    (``core.sample_choice``, by ``plan_choice``) and check each sample's reasoning against its trajectory."""
    stage: dict[str, float] = {"select_ms": job.select_ms}
    info = model.info

    def failed(failure: PlanFailure) -> PlanResult:
        return PlanResult(job.t0_ns, job.generation, None, (), failure, stage)

    t = time.perf_counter()
    try:
        images = assemble_images(job.sample, decode_frame, info.image_size_hw)
    except ImageAssemblyError as exc:
        return failed(PlanFailure(FailureKind.INPUT, f"bad camera frame: {exc}", exc.camera, exc.stamp_ns))
    stage["images_ms"] = (time.perf_counter() - t) * 1e3
    sample = ModelInput(
        t0_ns=job.t0_ns, images=images, frame_offsets_sec=tuple(info.frame_offsets_sec), ego_history=job.ego.history
    )
    t = time.perf_counter()
    try:
        pred = model.predict(sample)
    except Exception as exc:  # the model may raise anything; the caller reports it and keeps running
        text = f"model raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
        return failed(PlanFailure(FailureKind.MODEL, text))
    stage["inference_ms"] = (time.perf_counter() - t) * 1e3
    bad = check_prediction(pred)
    if bad is not None:
        return failed(PlanFailure(FailureKind.OUTPUT, f"model output rejected: {bad}"))
    pred = choose_plan(pred, plan_choice)
    speed = job.ego.speed_mps
    reports = tuple(check_consistency(pred.reasoning[i], pred.xyz[i], speed) for i in range(pred.num_samples))
    stage["processing_ms"] = (time.perf_counter() - job.started) * 1e3 + job.select_ms
    return PlanResult(job.t0_ns, job.generation, pred, reports, None, stage)


@dataclass(frozen=True)
class Unpublished:
    """A finished job whose plan does not go out. ``key`` is the log/diagnostics key; ``reason`` is empty when the
    drop is expected and not worth a log line (a result arriving after deactivation)."""

    key: str
    reason: str


def settle_result(
    stats: PlanningStats,
    intake: InputIntake,
    result: PlanResult,
    *,
    failure: str,
    model_failure: bool,
    has_output: bool,
    active: bool,
) -> Unpublished | None:
    """Book a finished job into the counters; None means "publish it".

    A result from an older intake generation (time jumped back while the model ran) is discarded; a failure is
    counted as the model's or the input's, and an input failure also goes on the camera's own status, so the camera's
    diagnostic says why even after the next plan clears the planner's.

    Args:
        failure: why the job has no output ("" when it has).
        model_failure: the failure is the model's (raised or bad output), not the input's.
        has_output: the job produced messages to publish.
        active: the node may publish now (a result finishing after deactivation is dropped silently).
    """
    stats.last_stage_ms = result.stage_ms
    if result.generation != intake.generation:
        stats.discarded += 1
        return Unpublished("discard", "result discarded: time jumped backwards during inference")
    if not has_output:
        stats.plan_failed(model_failure=model_failure)
        if result.failure is not None and result.failure.camera is not None:
            intake.camera_stats[result.failure.camera].error(result.failure.stamp_ns, result.failure.text)
        return Unpublished("worker", failure)
    if not active:
        stats.discarded += 1
        return Unpublished("inactive", "")
    return None


def worker_crashed(stats: PlanningStats, exc: BaseException) -> Unpublished:
    """A bug in the worker itself (not the model, which ``plan_once`` guards): counted as a model failure."""
    stats.model_failures += 1
    return Unpublished("worker", f"worker failed: {type(exc).__name__}: {exc}")


def synthetic_input(info_size: tuple[int, int] | None, cameras: Sequence[str], offsets: Sequence[float]) -> ModelInput:
    """A black, stationary sample for warm-up (exercises every stage once before we report ready).

    Args:
        info_size: (H, W) the model wants, or None for ``DEFAULT_WARMUP_SIZE_HW``.
        cameras: camera names the model consumes.
        offsets: frame times relative to t0 (s), oldest first.
    """
    height, width = info_size or DEFAULT_WARMUP_SIZE_HW
    images = {cam: np.zeros((len(offsets), height, width, 3), np.uint8) for cam in cameras}
    history = EgoHistory(
        xyz=np.zeros((HISTORY_STEPS, 3)),
        rotation=np.broadcast_to(np.eye(3), (HISTORY_STEPS, 3, 3)).copy(),
        offsets_sec=-STEP_SEC * np.arange(HISTORY_STEPS - 1, -1, -1, dtype=np.float64),
    )
    return ModelInput(t0_ns=0, images=images, frame_offsets_sec=tuple(offsets), ego_history=history)
