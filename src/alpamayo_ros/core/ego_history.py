"""Ego history from odometry of any rate: 16 poses at 10 Hz, t0-1.5 s .. t0, in the t0 ego frame.

Odometry samples are interpolated *by timestamp* (linear position, slerp rotation), never picked as "every k-th
message": real odometry comes at 17, 50 or 100 Hz with jitter and gaps. A target time is usable when it lies
between two samples at most ``max_gap_sec`` apart; t0 itself may lie up to ``max_extrapolation_sec`` after the
newest sample (odometry usually lags the cameras by a few ms). Non-finite samples and stamps <= 0 (an unset
header stamp, not a time) are rejected on arrival. Poses of two odometry frames are never mixed: a sample in another
frame than the buffer's flushes the buffer first (outcome ``frame_changed``).

Frames: odometry poses are (odom frame <- base_link). The result is expressed in the ego frame at t0
(x forward, y left, z up); the t0 pose in the odom frame is returned as well, to publish the plan in odom.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.param_fields import field_problems, param
from alpamayo_ros.core.rig import HISTORY_STEPS, STEP_SEC
from alpamayo_ros.core.sync import SyncParams
from alpamayo_ros.core.transforms import F64, TransformError, normalize_quat, quat_to_matrix, slerp, to_local
from alpamayo_ros.core.types import RELIABILITIES, BufferOutcome, EgoHistory


@dataclass(frozen=True)
class EgoParams:
    """Ego-history settings (the node's ``ego.*`` parameters)."""

    max_gap_sec: float = param(0.25, "longest odometry gap bridged by interpolation", min_value=0.01, max_value=1.0)
    max_extrapolation_sec: float = param(
        0.1, "how far past the newest odometry t0 may lie", min_value=0.0, max_value=0.5
    )
    buffer_sec: float = param(3.0, "odometry buffer length (>= 1.5 s history + max gap)", min_value=1.0, max_value=30.0)
    odometry_reliability: str = param(
        "best_effort",
        "odometry subscription QoS reliability; best_effort also receives from reliable publishers",
        choices=RELIABILITIES,
    )

    def problems(self, prefix: str = "ego.") -> list[str]:
        """Out-of-range fields, and a buffer shorter than the 1.5 s history plus the largest bridged gap."""
        problems = field_problems(self, prefix)
        if self.buffer_sec < (HISTORY_STEPS - 1) * STEP_SEC + self.max_gap_sec:
            problems.append(f"{prefix}buffer_sec = {self.buffer_sec} is shorter than 1.5 s + {prefix}max_gap_sec")
        return problems


class OdometryRejectedError(ValueError):
    """An odometry sample that must not enter the buffer (stamp <= 0, non-finite, bad quaternion)."""


@dataclass(frozen=True)
class OdomSample:
    stamp_ns: int
    position: F64  # (3,) metres in the odometry frame
    quat_xyzw: F64  # (4,) unit quaternion, odom <- base_link


@dataclass(frozen=True)
class OdomPose:
    """The ego pose at t0 in the odometry frame (to compose an odom-frame plan)."""

    frame_id: str
    position: F64
    rotation: F64  # (3, 3)
    quat_xyzw: F64


@dataclass(frozen=True)
class EgoHistoryResult:
    history: EgoHistory
    t0_pose: OdomPose
    speed_mps: float  # finite-difference speed over the newest 0.1 s of history (for checks and the test policy)


@dataclass(frozen=True)
class EgoHistoryFailure:
    reason: str


def make_odom_sample(stamp_ns: int, position: npt.ArrayLike, quat_xyzw: npt.ArrayLike) -> OdomSample:
    """Validate one odometry pose; raises OdometryRejectedError with the offending values."""
    if stamp_ns <= 0:
        raise OdometryRejectedError(f"stamp {stamp_ns} ns is not a time (<= 0: header stamp unset?)")
    pos = np.asarray(position, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(pos)):
        raise OdometryRejectedError(f"non-finite position {pos.tolist()}")
    try:
        quat = normalize_quat(np.asarray(quat_xyzw, dtype=np.float64).reshape(4))
    except TransformError as exc:
        raise OdometryRejectedError(str(exc)) from None
    return OdomSample(stamp_ns, pos, quat)


class OdometryBuffer:
    """Odometry samples ordered by stamp, pruned to ``buffer_sec``. Not thread-safe."""

    def __init__(
        self,
        buffer_sec: float = EgoParams.buffer_sec,
        backwards_jump_sec: float = SyncParams.backwards_jump_sec,
        backwards_jump_messages: int = SyncParams.backwards_jump_messages,
    ) -> None:
        self._buffer_ns = int(buffer_sec * 1e9)
        self._jump_ns = int(backwards_jump_sec * 1e9)
        self._jump_messages = backwards_jump_messages
        self._stray = 0  # consecutive samples far behind the newest
        self._stamps: list[int] = []
        self._samples: list[OdomSample] = []
        self.frame_id = ""

    def __len__(self) -> int:
        return len(self._stamps)

    def newest_stamp_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    def flush(self) -> None:
        self._stamps.clear()
        self._samples.clear()
        self._stray = 0

    def add(self, sample: OdomSample, frame_id: str = "") -> BufferOutcome:
        """Insert in stamp order; returns what happened to the sample.

        TIME_JUMPED_BACK: the ``backwards_jump_messages``-th consecutive sample older than the newest by more than
        ``backwards_jump_sec``: the buffer was flushed, then the sample added (the ones before it: STRAY_BACKWARDS,
        dropped). CONFLICTING_DUPLICATE: a stamp already buffered with another pose (dropped). FRAME_CHANGED:
        ``frame_id`` differs from the buffer's: the buffer was flushed, then the sample added in the new frame.
        BAD_STAMP: stamp <= 0, not added, buffer untouched. An empty ``frame_id`` keeps the buffer's frame.
        """
        if sample.stamp_ns <= 0:
            return BufferOutcome.BAD_STAMP
        stamps = self._stamps
        outcome = BufferOutcome.ADDED
        if frame_id and frame_id != self.frame_id:
            if self.frame_id:
                self.flush()
                outcome = BufferOutcome.FRAME_CHANGED
            self.frame_id = frame_id
        if stamps and sample.stamp_ns < stamps[-1] - self._jump_ns:
            self._stray += 1
            if self._stray < self._jump_messages:
                return BufferOutcome.STRAY_BACKWARDS
            self.flush()
            outcome = BufferOutcome.TIME_JUMPED_BACK
        self._stray = 0
        if stamps and sample.stamp_ns <= stamps[-1]:
            if sample.stamp_ns < stamps[-1] - self._buffer_ns:
                return BufferOutcome.TOO_OLD
            idx = bisect.bisect_left(stamps, sample.stamp_ns)
            if idx < len(stamps) and stamps[idx] == sample.stamp_ns:
                same = self._samples[idx]
                identical = np.array_equal(same.position, sample.position) and np.array_equal(
                    same.quat_xyzw, sample.quat_xyzw
                )
                return BufferOutcome.DUPLICATE if identical else BufferOutcome.CONFLICTING_DUPLICATE
            stamps.insert(idx, sample.stamp_ns)
            self._samples.insert(idx, sample)
            return BufferOutcome.OUT_OF_ORDER
        stamps.append(sample.stamp_ns)
        self._samples.append(sample)
        drop = bisect.bisect_left(stamps, sample.stamp_ns - self._buffer_ns) - 1  # keep one sample before the window
        if drop > 0:
            del stamps[:drop]
            del self._samples[:drop]
        return outcome

    def interpolate(self, t_ns: int, max_gap_ns: int, max_extrapolation_ns: int) -> tuple[F64, F64] | str:
        """(position (3,), quaternion (4,)) at t_ns, or the reason it cannot be known."""
        stamps = self._stamps
        if not stamps:
            return "no odometry received"
        if t_ns > stamps[-1]:
            late_ns = t_ns - stamps[-1]
            if late_ns > max_extrapolation_ns:
                return f"newest odometry is {late_ns / 1e6:.0f} ms older than the needed time"
            if len(stamps) < 2:
                return "a single odometry sample cannot be extrapolated"
            a, b = self._samples[-2], self._samples[-1]
        elif t_ns < stamps[0]:
            return f"odometry starts {(stamps[0] - t_ns) / 1e6:.0f} ms after the needed time"
        else:
            idx = bisect.bisect_left(stamps, t_ns)
            if stamps[idx] == t_ns:
                s = self._samples[idx]
                return s.position, s.quat_xyzw
            a, b = self._samples[idx - 1], self._samples[idx]
        gap_ns = b.stamp_ns - a.stamp_ns
        if gap_ns > max_gap_ns:
            return f"odometry gap of {gap_ns / 1e6:.0f} ms (max {max_gap_ns / 1e6:.0f} ms)"
        u = (t_ns - a.stamp_ns) / gap_ns
        return a.position + u * (b.position - a.position), slerp(a.quat_xyzw, b.quat_xyzw, u)


def build_ego_history(
    odometry: OdometryBuffer,
    t0_ns: int,
    params: EgoParams = EgoParams(),
    *,
    steps: int = HISTORY_STEPS,
    step_sec: float = STEP_SEC,
) -> EgoHistoryResult | EgoHistoryFailure:
    """Interpolate ``steps`` poses at t0 - (steps-1)*step .. t0 and express them in the t0 ego frame."""
    offsets_ns = [-round((steps - 1 - i) * step_sec * 1e9) for i in range(steps)]
    max_gap_ns = int(params.max_gap_sec * 1e9)
    max_extra_ns = int(params.max_extrapolation_sec * 1e9)
    positions = np.empty((steps, 3))
    quats = np.empty((steps, 4))
    for i, off_ns in enumerate(offsets_ns):
        got = odometry.interpolate(t0_ns + off_ns, max_gap_ns, max_extra_ns)
        if isinstance(got, str):
            return EgoHistoryFailure(f"ego history at t0{off_ns / 1e9:+.1f} s: {got}")
        positions[i], quats[i] = got
    rotations = quat_to_matrix(quats)
    p0, r0 = positions[-1], rotations[-1]
    xyz, rot = to_local(p0, r0, positions, rotations)
    rot[-1] = np.eye(3)
    xyz[-1] = 0.0
    if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(rot))):
        return EgoHistoryFailure("ego history is not finite")
    speed_mps = float(np.linalg.norm(xyz[-1] - xyz[-2]) / step_sec)
    history = EgoHistory(xyz=xyz, rotation=rot, offsets_sec=np.array(offsets_ns, dtype=np.float64) / 1e9)
    pose = OdomPose(odometry.frame_id, p0.copy(), r0.copy(), quats[-1].copy())
    return EgoHistoryResult(history, pose, speed_mps)
