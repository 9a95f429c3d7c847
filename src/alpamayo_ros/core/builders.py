"""Output message builders: Path, ChainOfCausation, MarkerArray, overlay Image. Message classes only, no rclpy.

Stamps: every output carries header.stamp = t0 (the anchor camera stamp the plan was computed from), never the
publish time, so consumers can measure staleness. Waypoint i (0-based) is stamped t0 + (i+1) * 0.1 s.
"""

from __future__ import annotations

import textwrap

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, PoseStamped, Vector3
from nav_msgs.msg import Path
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from alpamayo_ros.core.decisions import ConsistencyReport, StepRole
from alpamayo_ros.core.decisions import split_steps as split_causal_steps
from alpamayo_ros.core.ego_history import OdomPose
from alpamayo_ros.core.images import encode_rgb8
from alpamayo_ros.core.output_params import OutputParams
from alpamayo_ros.core.rig import STEP_SEC
from alpamayo_ros.core.transforms import matrix_to_quat, to_parent
from alpamayo_ros.core.types import ModelInfo, Prediction, StageTimings, UInt8Array
from alpamayo_ros.core.uncertainty import sample_uncertainty
from alpamayo_ros.msg import CausalStep, ChainOfCausation, DrivingDecision, StageLatency


def stamp_from_ns(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def ns_from_stamp(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header(t0_ns: int, frame_id: str) -> Header:
    return Header(stamp=stamp_from_ns(t0_ns), frame_id=frame_id)


def build_path(
    xyz: npt.ArrayLike, rotation: npt.ArrayLike, t0_ns: int, frame_id: str, step_sec: float = STEP_SEC
) -> Path:
    """(N, 3) positions and (N, 3, 3) rotations -> Path; pose i stamped t0 + (i+1)*step."""
    pts = np.asarray(xyz, dtype=np.float64).tolist()
    quats = matrix_to_quat(np.asarray(rotation, dtype=np.float64)).tolist()
    step_ns = round(step_sec * 1e9)
    poses = []
    # attribute assignment, not keyword constructors: half the cost for 64 poses (this runs every cycle)
    for i, (position, quat) in enumerate(zip(pts, quats, strict=True)):
        pose = PoseStamped()
        stamp_ns = t0_ns + (i + 1) * step_ns
        pose.header.stamp.sec, pose.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        pose.header.frame_id = frame_id
        p, o = pose.pose.position, pose.pose.orientation
        p.x, p.y, p.z = position
        o.x, o.y, o.z, o.w = quat
        poses.append(pose)
    return Path(header=header(t0_ns, frame_id), poses=poses)


def build_odom_path(
    xyz: npt.ArrayLike, rotation: npt.ArrayLike, t0_pose: OdomPose, t0_ns: int, frame_id: str = ""
) -> Path:
    """The plan composed with the t0 odometry pose: for RViz with a fixed odom frame."""
    pts, rots = to_parent(t0_pose.position, t0_pose.rotation, xyz, rotation)
    return build_path(pts, rots, t0_ns, frame_id or t0_pose.frame_id or "odom")


def _decision(lon: int, lat: int) -> DrivingDecision:
    return DrivingDecision(longitudinal=int(lon), lateral=int(lat))


_ROLE_TO_MSG = {
    StepRole.UNKNOWN: CausalStep.ROLE_UNKNOWN,
    StepRole.EVIDENCE: CausalStep.ROLE_EVIDENCE,
    StepRole.DECISION: CausalStep.ROLE_DECISION,
    StepRole.ACTION: CausalStep.ROLE_ACTION,
}


def model_label(info: ModelInfo) -> str:
    return f"{info.name} (untrained)" if info.untrained else info.name


def build_chain_of_causation(
    t0_ns: int,
    *,
    frame_id: str,
    prediction: Prediction,
    sample_index: int,
    report: ConsistencyReport,
    info: ModelInfo,
) -> ChainOfCausation:
    text = prediction.reasoning[sample_index]
    t = prediction.timings
    return ChainOfCausation(
        header=header(t0_ns, frame_id),
        reasoning_text=text,
        steps=[CausalStep(role=_ROLE_TO_MSG[role], text=piece) for role, piece in split_causal_steps(text)],
        reasoning_decision=_decision(report.stated.longitudinal, report.stated.lateral),
        trajectory_decision=_decision(report.shown.longitudinal, report.shown.lateral),
        agreement=int(report.agreement),
        agreement_detail=report.detail,
        model_name=model_label(info),
        model_version=info.version,
        num_generated_tokens=int(prediction.num_generated_tokens[sample_index]),
        truncated=bool(prediction.truncated[sample_index]),
        reasoning_uncertainty=sample_uncertainty(prediction, sample_index),
        sample_index=sample_index,
        num_samples=prediction.num_samples,
        latency=build_stage_latency(t),
    )


def build_stage_latency(t: StageTimings) -> StageLatency:
    """The message form of a prediction's per-stage timings (milliseconds)."""
    return StageLatency(
        preprocess_ms=float(t.preprocess_ms),
        vision_ms=float(t.vision_ms),
        reasoning_ms=float(t.reasoning_ms),
        action_ms=float(t.action_ms),
        total_ms=float(t.total_ms),
    )


LINE_WIDTH_M = 0.3  # trajectory line width in RViz
TEXT_HEIGHT_M = 0.6  # reasoning text height in RViz
DEFAULT_OUTPUT = OutputParams()


# RGBA per agreement value (unknown: amber, agree: green, disagree: red)
AGREEMENT_COLOURS: dict[int, tuple[float, float, float, float]] = {
    0: (1.0, 0.75, 0.0, 0.9),
    1: (0.0, 0.85, 0.3, 0.9),
    2: (1.0, 0.15, 0.15, 0.9),
}
MARKER_NAMESPACE = "alpamayo"


def build_markers(
    xyz: npt.ArrayLike,
    t0_ns: int,
    frame_id: str,
    *,
    text: str,
    agreement: int,
    style: OutputParams = DEFAULT_OUTPUT,
) -> MarkerArray:
    """Trajectory line, ego footprint and wrapped view-facing reasoning text, raised by z_offset.

    Not frame_locked: the points are in the ego frame *at t0* (the header stamp), so RViz must transform them once
    with the t0 transform. A frame-locked marker is re-transformed every frame with the newest transform, and in an
    odom fixed frame it would slide with the car (v x latency ahead of the Path it belongs to).
    """
    pts = np.asarray(xyz, dtype=np.float64)
    r, g, b, a = AGREEMENT_COLOURS.get(int(agreement), AGREEMENT_COLOURS[0])
    colour = ColorRGBA(r=r, g=g, b=b, a=a)
    hdr = header(t0_ns, frame_id)
    life_ns = round(style.marker_lifetime_sec * 1e9)
    lifetime = Duration(sec=life_ns // 1_000_000_000, nanosec=life_ns % 1_000_000_000)

    def base(marker_id: int, kind: int) -> Marker:
        m = Marker(header=hdr, ns=MARKER_NAMESPACE, id=marker_id, type=kind, action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.pose.position.z = style.marker_z_offset_m
        m.frame_locked = False
        m.lifetime = lifetime
        return m

    line = base(0, Marker.LINE_STRIP)
    line.scale.x = LINE_WIDTH_M
    line.color = colour
    line.points = [Point(x=0.0, y=0.0, z=0.0)] + [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pts]

    foot = base(1, Marker.LINE_STRIP)
    foot.scale.x = 0.08
    foot.color = ColorRGBA(r=0.9, g=0.9, b=0.9, a=0.9)
    rear, front = -style.rear_overhang_m, style.vehicle_length_m - style.rear_overhang_m
    half = style.vehicle_width_m / 2
    corners = [(rear, -half), (front, -half), (front, half), (rear, half), (rear, -half)]
    foot.points = [Point(x=x, y=y, z=0.0) for x, y in corners]

    label = base(2, Marker.TEXT_VIEW_FACING)
    label.pose.position.x = front + 1.0
    label.pose.position.z = style.marker_z_offset_m + 2.0
    label.scale = Vector3(x=0.0, y=0.0, z=TEXT_HEIGHT_M)
    label.color = colour
    label.text = "\n".join(textwrap.wrap(text, style.text_wrap_chars)) or "(no reasoning)"
    return MarkerArray(markers=[line, foot, label])


def build_image(rgb: UInt8Array, t0_ns: int, frame_id: str) -> Image:
    """RGB array -> sensor_msgs/Image rgb8 (data assigned as bytes: fast)."""
    height, width, step, data = encode_rgb8(rgb)
    return Image(header=header(t0_ns, frame_id), height=height, width=width, encoding="rgb8", step=step, data=data)
