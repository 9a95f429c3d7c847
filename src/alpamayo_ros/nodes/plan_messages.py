"""One plan -> the node's output messages: Path (+ odom Path, per-sample Paths), ChainOfCausation, markers, overlay.

Runs on the node's worker thread right after ``core.planning.plan_once``. Frames and stamps are those of
``core.builders``: plans in ``output.frame_id`` (base_link at t0) stamped t0, the odom path composed with the ego
pose at t0, the overlay in its camera's optical frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from nav_msgs.msg import Path
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core.builders import (
    build_chain_of_causation,
    build_image,
    build_markers,
    build_odom_path,
    build_path,
    build_stage_latency,
)
from alpamayo_ros.core.decisions import Agreement, ConsistencyReport
from alpamayo_ros.core.images import ImageConversionError
from alpamayo_ros.core.overlay import PinholeCamera, draw_overlay
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.core.planning import FailureKind, PlanJob, PlanResult, decode_frame, plan_once
from alpamayo_ros.core.sample_choice import plan_spread_m
from alpamayo_ros.core.types import DrivingModel, ModelInfo, Prediction
from alpamayo_ros.msg import ChainOfCausation, StageLatency


@dataclass(frozen=True)
class PlanMessages:
    """The messages of one plan (all stamped t0) and the reasoning/trajectory agreement of sample 0."""

    path: Path
    path_odom: Path | None
    reasoning: tuple[ChainOfCausation, ...]
    sample_paths: tuple[Path, ...]
    markers: MarkerArray
    overlay: Image | None
    latency: StageLatency
    agreement: Agreement
    agreement_detail: str
    uncertainty: float  # reasoning_uncertainty of sample 0 (NaN when the backend does not report it)
    spread_m: float  # core.sample_choice.plan_spread_m: the other samples' distance from the plan (NaN: one sample)


def build_plan_messages(
    info: ModelInfo,
    params: NodeParams,
    job: PlanJob,
    pred: Prediction,
    reports: tuple[ConsistencyReport, ...],
    *,
    camera_info: CameraInfo | None,
) -> PlanMessages:
    """All output messages of one checked prediction, per ``params`` (samples, odom path, markers, overlay).

    Raises:
        ValueError: invalid overlay intrinsics or geometry.
        ImageConversionError: the overlay camera frame cannot be decoded.
    """
    out, t0_ns = params.output, job.t0_ns
    count = pred.num_samples if params.node.publish_all_samples else 1
    reasoning = tuple(
        build_chain_of_causation(
            t0_ns, frame_id=out.frame_id, prediction=pred, sample_index=i, report=reports[i], info=info
        )
        for i in range(count)
    )
    path = build_path(pred.xyz[0], pred.rotation[0], t0_ns, out.frame_id)
    sample_paths = tuple(build_path(pred.xyz[i], pred.rotation[i], t0_ns, out.frame_id) for i in range(1, count))
    path_odom = (
        build_odom_path(pred.xyz[0], pred.rotation[0], job.ego.t0_pose, t0_ns, out.odom_frame_id)
        if out.publish_odom_path
        else None
    )
    label = pred.reasoning[0] if not info.untrained else f"[{info.name}: untrained] {pred.reasoning[0]}"
    agreement = reports[0].agreement
    markers = build_markers(pred.xyz[0], t0_ns, out.frame_id, text=label, agreement=int(agreement), style=out)
    overlay = None
    if params.overlay.enabled and job.extra_frame is not None:
        rgb = decode_frame(job.extra_frame.payload)
        cam = None
        if camera_info is not None and camera_info.width > 0 and camera_info.height > 0:
            cam = PinholeCamera.from_fields(
                list(camera_info.k),
                camera_info.width,
                camera_info.height,
                params.overlay.mount_xyz_m,
                params.overlay.mount_rpy_rad,
            )
        drawn = draw_overlay(
            rgb, cam, pred.xyz[0], label, agreement=int(agreement), max_width_px=params.overlay.max_width_px
        )
        # an image lives in its camera's optical frame, not in the trajectory's frame
        image_frame = (camera_info.header.frame_id if camera_info is not None else "") or params.overlay.camera
        overlay = build_image(drawn, t0_ns, image_frame)
    return PlanMessages(
        path=path,
        path_odom=path_odom,
        reasoning=reasoning,
        sample_paths=sample_paths,
        markers=markers,
        overlay=overlay,
        latency=build_stage_latency(pred.timings),
        agreement=agreement,
        agreement_detail=reports[0].detail,
        uncertainty=reasoning[0].reasoning_uncertainty,
        spread_m=plan_spread_m(pred.xyz),
    )


@dataclass(frozen=True)
class WorkerResult:
    """What the node's worker hands back: the plan result, and its messages when there is something to publish."""

    result: PlanResult
    messages: PlanMessages | None
    failure: str  # why there are no messages ("" when there are)
    model_failure: bool  # the failure is the model's (raised or bad output), not the input's


def plan_and_build(
    model: DrivingModel, job: PlanJob, params: NodeParams, camera_info: CameraInfo | None
) -> WorkerResult:
    """The worker's whole cycle: ``core.planning.plan_once``, then the messages; never raises for bad data.

    ``result.stage_ms`` gains ``build_ms`` and ``processing_ms`` (the whole cycle, selection included).
    """
    result = plan_once(job, model, params.planning.plan_choice)
    if result.prediction is None:
        assert result.failure is not None
        is_model = result.failure.kind is not FailureKind.INPUT
        return WorkerResult(result, None, result.failure.text, is_model)
    started = time.perf_counter()
    try:
        messages = build_plan_messages(
            model.info, params, job, result.prediction, result.reports, camera_info=camera_info
        )
    except (ValueError, ImageConversionError) as exc:
        return WorkerResult(result, None, f"could not build outputs: {exc}", False)
    result.stage_ms["build_ms"] = (time.perf_counter() - started) * 1e3
    result.stage_ms["processing_ms"] = (time.perf_counter() - job.started) * 1e3 + job.select_ms
    return WorkerResult(result, messages, "", False)
