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
from alpamayo_ros.core.images import UnsupportedEncodingError, is_supported_encoding
from alpamayo_ros.core.param_fields import param
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.sync import FrameEntry, FrameSynchronizer, SyncConfig
from alpamayo_ros.core.types import BufferOutcome

MESSAGE_TYPES: tuple[str, ...] = ("image", "compressed")
RELIABILITIES: tuple[str, ...] = ("best_effort", "reliable")
COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "jpg", "png")
CAMERA_PLACEHOLDER = "<camera>"


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


class InputIntake:
    """Buffers and statistics of every input stream. Not thread-safe: the node calls it from its executor only.

    ``configure`` creates the buffers for one model (before it, messages are only counted); ``release`` drops them.
    """

    def __init__(self) -> None:
        self.camera_stats: dict[str, StreamStats] = {cam: StreamStats() for cam in CAMERA_NAMES}
        self.odometry_stats = StreamStats()
        self.sync: FrameSynchronizer | None = None
        self.odometry = OdometryBuffer()
        self.generation = 0  # bumped on every flush
        self.flushes = 0

    def configure(self, sync: SyncConfig, ego: EgoParams) -> None:
        """Buffers for one model's synchronisation settings (raises ValueError for settings that do not fit it)."""
        self.sync = FrameSynchronizer(sync)
        self.odometry = OdometryBuffer(ego.buffer_sec, sync.params.backwards_jump_sec)

    def release(self) -> None:
        self.sync = None
        self.odometry.flush()

    # --- cameras ---------------------------------------------------------------------------------------------

    def add_image(self, camera: str, msg: Any) -> list[Notice]:
        """A raw sensor_msgs/Image of ``camera``: encoding checked, size recorded, buffered undecoded."""
        stats = self.camera_stats[camera]
        stamp = stamp_ns(msg.header.stamp)
        notices: list[Notice] = []
        error: str | None = None
        if not is_supported_encoding(msg.encoding):
            error = str(UnsupportedEncodingError(msg.encoding))
            stats.error(stamp, error)
            notices.append(Notice(f"enc/{camera}", f"{camera}: {error}", "error"))
        size = (int(msg.width), int(msg.height))
        if error is None:
            changed = stats.note_size(size, stamp)
            if changed is not None:
                notices.append(Notice(f"size/{camera}", f"{camera}: {changed}"))
        return notices + self._buffer_frame(camera, FrameEntry(stamp, msg, size, error))

    def add_compressed(self, camera: str, msg: Any) -> list[Notice]:
        """A sensor_msgs/CompressedImage of ``camera`` (JPEG/PNG; an empty format is decoded by content)."""
        stamp = stamp_ns(msg.header.stamp)
        fmt = str(msg.format).lower()
        notices: list[Notice] = []
        error = None
        if fmt and not any(name in fmt for name in COMPRESSED_FORMATS):
            error = str(UnsupportedEncodingError(msg.format))
            self.camera_stats[camera].error(stamp, error)
            notices.append(Notice(f"enc/{camera}", f"{camera}: {error}", "error"))
        return notices + self._buffer_frame(camera, FrameEntry(stamp, msg, None, error))

    def add_frame(self, camera: str, msg: Any) -> list[Notice]:
        """Either kind of camera message (told apart by its fields: a CompressedImage has ``format``)."""
        return self.add_compressed(camera, msg) if hasattr(msg, "format") else self.add_image(camera, msg)

    def _buffer_frame(self, camera: str, entry: FrameEntry) -> list[Notice]:
        stats = self.camera_stats[camera]
        stats.received += 1
        if entry.stamp_ns <= 0:
            stats.error(entry.stamp_ns, "zero stamp (frame dropped)")
            return [Notice(f"stamp/{camera}", f"{camera}: frame without a stamp dropped")]
        if self.sync is None:
            return []
        outcome = self.sync.add(camera, entry)
        if outcome is BufferOutcome.DUPLICATE:
            stats.duplicates += 1
            return [Notice(f"dup/{camera}", f"{camera}: duplicate stamp {entry.stamp_ns} dropped")]
        if outcome is BufferOutcome.TOO_OLD:
            stats.error(entry.stamp_ns, "frame older than the buffer (dropped)")
            return []
        notices = []
        if outcome is BufferOutcome.OUT_OF_ORDER:
            stats.out_of_order += 1
            notices.append(Notice(f"ooo/{camera}", f"{camera}: out-of-order stamp {entry.stamp_ns} reordered"))
        elif outcome is BufferOutcome.TIME_JUMPED_BACK:
            notices.append(self.flush(f"{camera} stamp went back to {entry.stamp_ns / 1e9:.3f} s", keep="cameras"))
        stats.accepted(entry.stamp_ns, time_jumped_back=outcome is BufferOutcome.TIME_JUMPED_BACK)
        return notices

    # --- odometry --------------------------------------------------------------------------------------------

    def add_odometry(self, msg: Any) -> list[Notice]:
        """A nav_msgs/Odometry: stamp, pose and twist must be finite; buffered in its header frame."""
        stats = self.odometry_stats
        stats.received += 1
        stamp = stamp_ns(msg.header.stamp)
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
        if outcome is BufferOutcome.TOO_OLD:
            stats.error(stamp, "odometry older than the buffer (dropped)")
            return []
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
        if self.sync is not None and keep != "cameras":
            self.sync.flush()
        if keep != "odometry":
            self.odometry.flush()
        for stats in (*self.camera_stats.values(), self.odometry_stats):
            stats.stamps.clear()
        self.generation += 1
        self.flushes += 1
        return Notice("flush", f"time jumped backwards ({why}): all buffers flushed")
