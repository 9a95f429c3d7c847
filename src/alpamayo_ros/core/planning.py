"""One planning cycle without ROS: the job handed to the worker, the worker's run, the output sanity gate, the
output messages, and the synchronisation settings a model needs.

The node builds a ``PlanJob`` on its executor thread from its buffers at one tick; its worker thread calls
``run_job``, which returns a ``PlanResult`` (outputs to publish, or the reason there are none); the node
publishes. Nothing here touches node state or imports rclpy; message classes are only constructed (core.builders).

Frames and stamps are those of core.builders: plans in ``output_frame_id`` (base_link at t0) stamped t0, the
optional odom path composed with the ego pose at t0.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nav_msgs.msg import Path
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core import params as P
from alpamayo_ros.core.builders import (
    MarkerStyle,
    build_chain_of_causation,
    build_image,
    build_markers,
    build_odom_path,
    build_path,
    build_stage_latency,
)
from alpamayo_ros.core.decisions import check_consistency
from alpamayo_ros.core.ego_history import EgoHistoryResult
from alpamayo_ros.core.images import ImageConversionError, compressed_to_rgb, raw_to_rgb
from alpamayo_ros.core.overlay import PinholeCamera, draw_overlay
from alpamayo_ros.core.rig import CAMERA_NAMES, FUTURE_STEPS, HISTORY_STEPS, STEP_SEC
from alpamayo_ros.core.sync import FrameEntry, ImageAssemblyError, SyncConfig, SyncedSample, assemble_images
from alpamayo_ros.core.types import DrivingModel, EgoHistory, ModelInfo, ModelInput, Prediction, UInt8Array
from alpamayo_ros.msg import ChainOfCausation, StageLatency

DEFAULT_WARMUP_SIZE_HW = (320, 576)  # warm-up frame size for models that resize frames themselves


# --- data handed between the executor and the worker ----------------------------------------------------------


@dataclass(frozen=True)
class PlanJob:
    """Everything the worker needs; built on the executor thread from the buffers at one tick."""

    sample: SyncedSample
    ego: EgoHistoryResult
    generation: int  # buffers' generation (bumped on every flush): results of an older one are dropped
    params: P.NodeParams
    overlay_entry: FrameEntry | None
    camera_info: CameraInfo | None
    select_ms: float
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class PlanOutputs:
    """The messages of one plan (all stamped t0) and the reasoning/trajectory agreement of sample 0."""

    path: Path
    path_odom: Path | None
    reasoning: tuple[ChainOfCausation, ...]
    sample_paths: tuple[Path, ...]
    markers: MarkerArray
    overlay: Image | None
    agreement: int
    agreement_detail: str


@dataclass(frozen=True)
class PlanResult:
    """What the worker returns: outputs to publish, or the reason there are none."""

    t0_ns: int
    generation: int
    outputs: PlanOutputs | None
    failure: str | None
    stage_ms: dict[str, float]
    latency: StageLatency | None = None


# --- pure steps of a cycle ---------------------------------------------------------------------------------------


def decode_frame(payload: Any) -> UInt8Array:
    """A buffered camera message (sensor_msgs Image or CompressedImage) -> (H, W, 3) uint8 RGB."""
    if isinstance(payload, CompressedImage):
        return compressed_to_rgb(payload.format, payload.data)
    return raw_to_rgb(payload.encoding, payload.height, payload.width, payload.step, payload.data)


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


def build_outputs(info: ModelInfo, job: PlanJob, pred: Prediction) -> PlanOutputs:
    """All output messages of one checked prediction, per ``job.params`` (samples, odom path, markers, overlay).

    Raises:
        ValueError: invalid overlay intrinsics or geometry.
        ImageConversionError: the overlay camera frame cannot be decoded.
    """
    prm, t0_ns = job.params, job.sample.t0_ns
    frame = prm.output_frame_id
    reports = [check_consistency(pred.reasoning[i], pred.xyz[i], job.ego.speed_mps) for i in range(pred.num_samples)]
    count = pred.num_samples if prm.publish_all_samples else 1
    reasoning = tuple(
        build_chain_of_causation(t0_ns, frame_id=frame, prediction=pred, sample_index=i, report=reports[i], info=info)
        for i in range(count)
    )
    path = build_path(pred.xyz[0], pred.rotation[0], t0_ns, frame)
    sample_paths = tuple(build_path(pred.xyz[i], pred.rotation[i], t0_ns, frame) for i in range(1, count))
    path_odom = (
        build_odom_path(pred.xyz[0], pred.rotation[0], job.ego.t0_pose, t0_ns, prm.output_odom_frame_id)
        if prm.output_publish_odom_path
        else None
    )
    style = MarkerStyle(
        z_offset_m=prm.output_marker_z_offset_m,
        text_wrap_chars=prm.output_text_wrap_chars,
        vehicle_length_m=prm.output_vehicle_length_m,
        vehicle_width_m=prm.output_vehicle_width_m,
        rear_overhang_m=prm.output_rear_overhang_m,
        lifetime_sec=prm.output_marker_lifetime_sec,
    )
    label = pred.reasoning[0]
    if info.untrained:
        label = f"[{info.name}: untrained] {label}"
    markers = build_markers(pred.xyz[0], t0_ns, frame, text=label, agreement=int(reports[0].agreement), style=style)
    overlay = None
    if prm.overlay_enabled and job.overlay_entry is not None:
        rgb = decode_frame(job.overlay_entry.payload)
        cam = None
        cam_info = job.camera_info
        if cam_info is not None and cam_info.width > 0 and cam_info.height > 0:
            cam = PinholeCamera.from_fields(
                list(cam_info.k), cam_info.width, cam_info.height, prm.overlay_mount_xyz_m, prm.overlay_mount_rpy_rad
            )
        drawn = draw_overlay(
            rgb, cam, pred.xyz[0], label, agreement=int(reports[0].agreement), max_width_px=prm.overlay_max_width_px
        )
        # an image lives in its camera's optical frame, not in the trajectory's frame
        image_frame = (cam_info.header.frame_id if cam_info is not None else "") or prm.overlay_camera
        overlay = build_image(drawn, t0_ns, image_frame)
    return PlanOutputs(
        path=path,
        path_odom=path_odom,
        reasoning=reasoning,
        sample_paths=sample_paths,
        markers=markers,
        overlay=overlay,
        agreement=int(reports[0].agreement),
        agreement_detail=reports[0].detail,
    )


def run_job(model: DrivingModel, job: PlanJob) -> PlanResult:
    """Decode/resize the job's frames, run the model, check its output, build the messages; never raises for a
    bad frame, a model failure or a bad output: the result carries the reason instead.

    Runs on the node's worker thread and touches only ``job`` and ``model``. ``stage_ms`` holds the wall times of
    the stages reached (select, images, inference, build, processing = the whole cycle), in milliseconds.
    """
    stage: dict[str, float] = {"select_ms": job.select_ms}
    t0_ns = job.sample.t0_ns
    info = model.info
    t = time.perf_counter()
    try:
        images = assemble_images(job.sample, decode_frame, info.image_size_hw)
    except ImageAssemblyError as exc:
        return PlanResult(t0_ns, job.generation, None, f"bad camera frame: {exc}", stage)
    stage["images_ms"] = (time.perf_counter() - t) * 1e3
    sample = ModelInput(
        t0_ns=t0_ns, images=images, frame_offsets_sec=tuple(info.frame_offsets_sec), ego_history=job.ego.history
    )
    t = time.perf_counter()
    try:
        pred = model.predict(sample)
    except Exception as exc:  # the model may raise anything; the node reports it and keeps running
        tb = traceback.format_exc(limit=4)
        return PlanResult(t0_ns, job.generation, None, f"model raised {type(exc).__name__}: {exc}\n{tb}", stage)
    stage["inference_ms"] = (time.perf_counter() - t) * 1e3
    bad = check_prediction(pred)
    if bad is not None:
        return PlanResult(t0_ns, job.generation, None, f"model output rejected: {bad}", stage)
    t = time.perf_counter()
    try:
        outputs = build_outputs(info, job, pred)
    except (ValueError, ImageConversionError) as exc:
        return PlanResult(t0_ns, job.generation, None, f"could not build outputs: {exc}", stage)
    stage["build_ms"] = (time.perf_counter() - t) * 1e3
    stage["processing_ms"] = (time.perf_counter() - job.started) * 1e3 + job.select_ms
    return PlanResult(t0_ns, job.generation, outputs, None, stage, build_stage_latency(pred.timings))


def sync_config(params: P.NodeParams, info: ModelInfo) -> SyncConfig:
    """The synchroniser settings for a model: all rig cameras, the model's cameras required at its frame offsets.

    The buffer is stretched to hold the model's oldest frame plus tolerance, anchor lag and 0.1 s margin, whatever
    ``sync.buffer_sec`` says.

    Raises:
        ValueError: the model has no frame offsets.
    """
    return SyncConfig(
        cameras=CAMERA_NAMES,
        required=tuple(info.cameras),
        anchor=params.sync_anchor_camera,
        frame_offsets_sec=tuple(info.frame_offsets_sec),
        tolerance_sec=params.sync_tolerance_sec,
        missing_policy=params.sync_missing_camera_policy,
        buffer_sec=max(
            params.sync_buffer_sec,
            -min(info.frame_offsets_sec) + params.sync_tolerance_sec + params.sync_max_anchor_lag_sec + 0.1,
        ),
        max_anchor_lag_sec=params.sync_max_anchor_lag_sec,
        backwards_jump_sec=params.sync_backwards_jump_sec,
    )
