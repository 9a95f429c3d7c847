"""Input intake: camera frames and odometry into their time-ordered buffers, with the counting and the reasons.

The node's subscription callbacks, the offline evaluation (rosbags messages) and the simulator hand every message to
one ``InputIntake``; it checks what can be checked without decoding (stamp, encoding, finite odometry), buffers
the message (``core.sync`` for frames, ``core.ego_history`` for odometry), keeps each stream's ``StreamStats`` and
returns ``Notice``s: the log lines the caller should emit (throttled per key by the node). Messages are read by field
name only (``header.stamp``, ``encoding``/``format``, ``pose.pose``, ``twist.twist``), so rclpy messages and rosbags'
deserialised messages are handled alike and no message class is imported here.

Time going backwards (a bag loop, a restarted clock) flushes every buffer and bumps ``generation``: a plan computed
on data of an older generation is never published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from alpamayo_ros.core.diagnostics import StreamStats
from alpamayo_ros.core.ego_history import EgoParams, OdometryBuffer, OdometryRejectedError, make_odom_sample
from alpamayo_ros.core.images import ImageConversionError, compressed_size, raw_layout_problem
from alpamayo_ros.core.param_fields import param
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.sync import FrameEntry, FrameSynchronizer, SyncConfig
from alpamayo_ros.core.types import RELIABILITIES, BufferOutcome

MESSAGE_TYPES: tuple[str, ...] = ("image", "compressed")
COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "jpg", "png")
CAMERA_PLACEHOLDER = "<camera>"
# Wider than any real camera (panoramic ones are ~4:1); the model's image processor refuses extreme ratios anyway.
MAX_ASPECT_RATIO = 10.0


@dataclass(frozen=True)
class InputParams:
    """Limits every incoming frame and stamp is checked against before it is buffered (the ``input.*`` parameters).

    A frame that fails a check is kept as an unusable entry (the synchroniser says why no sample is complete), counted
    and shown on its camera's diagnostic status; it is never decoded and never becomes a plan.
    """

    max_image_pixels: int = param(
        16_777_216,
        "frames declaring more pixels than this (width x height, read from the header before decoding) are refused",
        min_value=1024,
        max_value=268_435_456,
    )
    min_image_side_px: int = param(16, "frames narrower or lower than this are refused", min_value=1, max_value=4096)
    resolution_change_frames: int = param(
        10,
        "a camera's size is established by its first frame; a new size is accepted after this many consecutive "
        "frames of it (frames of two sizes never share a sample)",
        min_value=1,
        max_value=1000,
    )
    max_future_stamp_sec: float = param(
        1.0,
        "messages stamped more than this ahead of the node clock are refused (a glitched stamp must not become "
        "its stream's newest)",
        min_value=0.01,
        max_value=60.0,
    )


@dataclass(frozen=True)
class CameraInput:
    """How one camera reaches the node (the ``cameras.<camera>.*`` parameters); ``<camera>`` stands for its name."""

    name: str
    topic: str = param(
        f"~/input/{CAMERA_PLACEHOLDER}/image",
        f"topic of {CAMERA_PLACEHOLDER} (relative names resolve under the node; remappable)",
    )
    message_type: str = param(
        "image",
        "sensor_msgs/Image ('image') or sensor_msgs/CompressedImage ('compressed', JPEG/PNG)",
        choices=MESSAGE_TYPES,
    )
    reliability: str = param(
        "best_effort",
        "subscription QoS reliability; best_effort also receives from reliable publishers",
        choices=RELIABILITIES,
    )

    @staticmethod
    def default_for(camera: str) -> CameraInput:
        """The defaults of one camera, its name filled into the topic."""
        return CameraInput(camera, topic=CameraInput.topic.replace(CAMERA_PLACEHOLDER, camera))


@dataclass(frozen=True)
class Notice:
    """A log line the caller should emit; ``key`` groups repeats for throttling."""

    key: str
    text: str
    level: Literal["warn", "error"] = "warn"


def stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (any object with ``sec`` and ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class _SizeState:
    """A camera's established frame size and a candidate new one (width, height in pixels)."""

    established: tuple[int, int] | None = None
    candidate: tuple[int, int] | None = None
    candidate_frames: int = 0


class InputIntake:
    """Buffers and statistics of every input stream. Not thread-safe: the node calls it from its executor only.

    ``configure`` creates the buffers for one model (before it, messages are only counted); ``release`` drops them.
    ``now_ns`` (the receiver's clock, ROS time) lets the intake refuse stamps from the future; None or 0 (sim time
    before the first /clock) skips that check.
    """

    def __init__(self) -> None:
        self.camera_stats: dict[str, StreamStats] = {cam: StreamStats() for cam in CAMERA_NAMES}
        self.odometry_stats = StreamStats()
        self.sync: FrameSynchronizer | None = None
        self.odometry = OdometryBuffer()
        self.limits = InputParams()
        self.generation = 0  # bumped on every flush
        self.flushes = 0
        self._sizes: dict[str, _SizeState] = {cam: _SizeState() for cam in CAMERA_NAMES}

    def configure(self, sync: SyncConfig, ego: EgoParams, limits: InputParams | None = None) -> None:
        """Buffers for one model's synchronisation settings (raises ValueError for settings that do not fit it)."""
        self.sync = FrameSynchronizer(sync)
        jump = sync.params
        self.odometry = OdometryBuffer(ego.buffer_sec, jump.backwards_jump_sec, jump.backwards_jump_messages)
        self.limits = limits or InputParams()
        self._sizes = {cam: _SizeState() for cam in CAMERA_NAMES}

    def release(self) -> None:
        self.sync = None
        self.odometry.flush()

    # --- cameras ---------------------------------------------------------------------------------------------

    def add_image(self, camera: str, msg: Any, now_ns: int | None = None) -> list[Notice]:
        """A raw sensor_msgs/Image of ``camera``: fields checked against the data, size checked, buffered undecoded."""
        height, width = int(msg.height), int(msg.width)
        problem = raw_layout_problem(str(msg.encoding), height, width, int(msg.step), len(msg.data))
        return self._add_frame(camera, msg, now_ns, (width, height), problem)

    def add_compressed(self, camera: str, msg: Any, now_ns: int | None = None) -> list[Notice]:
        """A sensor_msgs/CompressedImage of ``camera`` (JPEG/PNG): its header's size checked, buffered undecoded."""
        try:
            size: tuple[int, int] | None = compressed_size(str(msg.format), msg.data)
            problem = None
        except ImageConversionError as exc:
            size, problem = None, str(exc)
        return self._add_frame(camera, msg, now_ns, size, problem)

    def add_frame(self, camera: str, msg: Any, now_ns: int | None = None) -> list[Notice]:
        """Either kind of camera message (told apart by its fields: a CompressedImage has ``format``)."""
        if hasattr(msg, "format"):
            return self.add_compressed(camera, msg, now_ns)
        return self.add_image(camera, msg, now_ns)

    def _add_frame(
        self, camera: str, msg: Any, now_ns: int | None, size: tuple[int, int] | None, problem: str | None
    ) -> list[Notice]:
        stats = self.camera_stats[camera]
        stats.received += 1
        stamp = stamp_ns(msg.header.stamp)
        notices: list[Notice] = []
        if stamp <= 0:
            stats.error(stamp, "zero stamp (frame dropped)")
            return [Notice(f"stamp/{camera}", f"{camera}: frame without a stamp dropped")]
        future = self._future_problem(stamp, now_ns)
        if future is not None:
            stats.error(stamp, f"frame {future} (dropped)")
            return [Notice(f"future/{camera}", f"{camera}: frame {future} (dropped)")]
        if problem is None and size is not None:
            problem = self._size_problem(camera, size, notices)
        if problem is not None:
            stats.error(stamp, problem)
            notices.append(Notice(f"frame/{camera}", f"{camera}: {problem}", "error"))
            msg = None  # an unusable frame keeps its stamp and reason, not its (possibly huge) data
        elif size is not None:
            stats.size_wh = self._sizes[camera].established
        return notices + self._buffer_frame(camera, FrameEntry(stamp, msg, size, problem))

    def _future_problem(self, stamp: int, now_ns: int | None) -> str | None:
        if now_ns is None or now_ns <= 0 or stamp - now_ns <= self.limits.max_future_stamp_sec * 1e9:
            return None
        return f"stamped {(stamp - now_ns) / 1e9:.3f} s ahead of the clock"

    def _size_problem(self, camera: str, size: tuple[int, int], notices: list[Notice]) -> str | None:
        """Why a frame of this size is refused, or None; tracks the camera's established size and changes to it."""
        width, height = size
        limits = self.limits
        if width * height > limits.max_image_pixels:
            return f"frame declares {width}x{height} ({width * height} px), more than input.max_image_pixels"
        if min(width, height) < limits.min_image_side_px:
            return f"frame size {width}x{height} is below input.min_image_side_px ({limits.min_image_side_px})"
        if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
            return f"frame size {width}x{height} has an aspect ratio beyond {MAX_ASPECT_RATIO:g}:1"
        state = self._sizes[camera]
        if state.established is None or state.established == size:
            state.established, state.candidate, state.candidate_frames = size, None, 0
            return None
        if state.candidate == size:
            state.candidate_frames += 1
        else:
            state.candidate, state.candidate_frames = size, 1
        old = state.established
        if state.candidate_frames < limits.resolution_change_frames:
            return (
                f"image size changed from {old[0]}x{old[1]} to {width}x{height} "
                f"({state.candidate_frames} of {limits.resolution_change_frames} consistent frames to accept it)"
            )
        state.established, state.candidate, state.candidate_frames = size, None, 0
        if self.sync is not None:
            self.sync.flush_camera(camera)
        notices.append(
            Notice(f"size/{camera}", f"{camera}: resolution changed from {old[0]}x{old[1]} to {width}x{height}")
        )
        return None

    def _buffer_frame(self, camera: str, entry: FrameEntry) -> list[Notice]:
        stats = self.camera_stats[camera]
        if self.sync is None:
            return []
        outcome = self.sync.add(camera, entry)
        if outcome is BufferOutcome.DUPLICATE:
            stats.duplicates += 1
            return [Notice(f"dup/{camera}", f"{camera}: duplicate stamp {entry.stamp_ns} dropped")]
        if outcome in (BufferOutcome.TOO_OLD, BufferOutcome.STRAY_BACKWARDS):
            stats.error(entry.stamp_ns, f"frame {outcome.value}")
            return [Notice(f"old/{camera}", f"{camera}: frame at {entry.stamp_ns / 1e9:.3f} s {outcome.value}")]
        notices = []
        if outcome is BufferOutcome.OUT_OF_ORDER:
            stats.out_of_order += 1
            notices.append(Notice(f"ooo/{camera}", f"{camera}: out-of-order stamp {entry.stamp_ns} reordered"))
        elif outcome is BufferOutcome.TIME_JUMPED_BACK:
            notices.append(self.flush(f"{camera} stamp went back to {entry.stamp_ns / 1e9:.3f} s", keep="cameras"))
        stats.accepted(entry.stamp_ns, time_jumped_back=outcome is BufferOutcome.TIME_JUMPED_BACK)
        return notices

    # --- odometry --------------------------------------------------------------------------------------------

    def add_odometry(self, msg: Any, now_ns: int | None = None) -> list[Notice]:
        """A nav_msgs/Odometry: stamp, pose and twist must be finite; buffered in its header frame."""
        stats = self.odometry_stats
        stats.received += 1
        stamp = stamp_ns(msg.header.stamp)
        future = self._future_problem(stamp, now_ns)
        if future is not None:
            stats.error(stamp, f"odometry {future} (dropped)")
            return [Notice("odom/future", f"odometry {future} (dropped)")]
        p, q, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        try:
            twist = (tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z)
            if not np.all(np.isfinite(twist)):
                raise OdometryRejectedError(f"non-finite twist {list(twist)}")
            sample = make_odom_sample(stamp, (p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        except OdometryRejectedError as exc:
            stats.error(stamp, f"rejected: {exc}")
            return [Notice("odom/reject", f"odometry at {stamp / 1e9:.3f} s rejected: {exc}")]
        frame_id = str(msg.header.frame_id)
        outcome = self.odometry.add(sample, frame_id)
        if outcome is BufferOutcome.DUPLICATE:
            stats.duplicates += 1
            return []
        if outcome is BufferOutcome.BAD_STAMP:
            stats.error(stamp, f"odometry stamp {stamp} ns is not a time (dropped)")
            return [Notice("odom/stamp", f"odometry with stamp {stamp} ns dropped")]
        if outcome in (BufferOutcome.TOO_OLD, BufferOutcome.STRAY_BACKWARDS, BufferOutcome.CONFLICTING_DUPLICATE):
            stats.error(stamp, f"odometry {outcome.value}")
            return [Notice(f"odom/{outcome.name.lower()}", f"odometry at {stamp / 1e9:.3f} s: {outcome.value}")]
        notices = []
        if outcome is BufferOutcome.OUT_OF_ORDER:
            stats.out_of_order += 1
        elif outcome is BufferOutcome.TIME_JUMPED_BACK:
            notices.append(self.flush(f"odometry stamp went back to {stamp / 1e9:.3f} s", keep="odometry"))
        elif outcome is BufferOutcome.FRAME_CHANGED:
            # poses of two frames must never be interpolated into one history: start over in the new frame
            stats.error(stamp, f"odometry frame changed to {frame_id!r}: history restarted")
            notices.append(self.flush(f"odometry frame changed to {frame_id!r}", keep="odometry"))
        restarted = outcome in (BufferOutcome.TIME_JUMPED_BACK, BufferOutcome.FRAME_CHANGED)
        stats.accepted(stamp, time_jumped_back=restarted)
        return notices

    # --- time going backwards ----------------------------------------------------------------------------------

    def flush(self, why: str, keep: Literal["", "cameras", "odometry"] = "") -> Notice:
        """Time went backwards: forget every buffer; results of the old generation will be discarded.

        ``keep`` names the buffer that already flushed itself before taking the first message of the new timeline;
        flushing it again would drop that message.
        """
        self._empty(keep)
        self.flushes += 1
        return Notice("flush", f"time jumped backwards ({why}): all buffers flushed")

    def newest_stamp_ns(self) -> int | None:
        """The newest stamp buffered in any stream (ns), or None while every buffer is empty."""
        stamps = [self.odometry.newest_stamp_ns()]
        if self.sync is not None:
            stamps += [self.sync.newest_stamp_ns(cam) for cam in self.sync.config.cameras]
        return max((s for s in stamps if s is not None), default=None)

    def forget(self) -> None:
        """Deactivation: forget every buffered input, as a freshly configured node holds none; results of the old
        generation will be discarded. Not a time jump (not counted in ``flushes``).

        The next activation plans only on what arrives after this call. A timeline that restarts before it (the
        simulator's next rollout on the same node) then starts on empty buffers instead of looking like time going
        backwards, which would drop its first messages as strays.
        """
        self._empty("")

    def _empty(self, keep: Literal["", "cameras", "odometry"]) -> None:
        if self.sync is not None and keep != "cameras":
            self.sync.flush()
        if keep != "odometry":
            self.odometry.flush()
        for stats in (*self.camera_stats.values(), self.odometry_stats):
            stats.stamps.clear()
        self.generation += 1
