"""Multi-camera synchronisation by an explicit policy (message_filters does not exist here and would not scale).

Policy: the anchor camera's newest frame defines t0. For every frame time the model reads (t0 + offset, offsets
<= 0) each camera contributes its frame *nearest* that time, if within ``tolerance``. If the newest anchor frame
is incomplete (a slower camera's frame may still be in flight), older anchor frames up to ``max_anchor_lag``
back are tried, newest first. A required camera without a usable frame fails the sample (policy ``skip``), or is
filled (``hold``: its nearest frame whatever the distance; ``black``: a black frame) and reported as filled.
Cameras the model does not consume are still checked at t0 and reported as warnings, never as failures.

Stamps are integer nanoseconds of ROS time. Per camera: a duplicate stamp is dropped, a slightly late stamp is
inserted in order, a stamp more than ``backwards_jump`` older than that camera's newest means time went
backwards (bag loop, restart): every buffer is flushed. Payloads are opaque (the node stores messages and
decodes only the frames a sample uses, once: the decoded frame is cached on its entry).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alpamayo_ros.core.images import ImageConversionError, resize_rgb
from alpamayo_ros.core.param_fields import field_problems, param
from alpamayo_ros.core.rig import ALPAMAYO_R1_FRAME_OFFSETS_SEC, CAMERA_NAMES
from alpamayo_ros.core.types import BufferOutcome, UInt8Array

MISSING_CAMERA_POLICIES: tuple[str, ...] = ("skip", "hold", "black")


@dataclass(frozen=True)
class SyncParams:
    """The user's synchronisation settings (the node's ``sync.*`` parameters)."""

    anchor_camera: str = param("camera_front_wide_120fov", "camera whose stamp defines t0", choices=CAMERA_NAMES)
    tolerance_sec: float = param(
        0.05, "max distance of a camera frame from the frame time it stands for", min_value=0.001, max_value=0.5
    )
    missing_camera_policy: str = param(
        "skip",
        "a model camera without a frame in tolerance: skip the cycle, hold its nearest frame, or fill black",
        choices=MISSING_CAMERA_POLICIES,
    )
    max_anchor_lag_sec: float = param(
        0.1, "how far behind the newest anchor frame a complete sample may be", min_value=0.0, max_value=1.0
    )
    buffer_sec: float = param(
        0.6,
        "per-camera frame buffer (raw messages are kept, decoded lazily: 1080p rgb8 at 10 Hz is ~37 MB per camera)",
        min_value=0.1,
        max_value=10.0,
    )
    backwards_jump_sec: float = param(
        0.5, "a stamp this much older than its stream's newest flushes all buffers", min_value=0.05, max_value=60.0
    )

    def problems(self, prefix: str = "sync.") -> list[str]:
        """Out-of-range fields, and a buffer too short for Alpamayo-R1's 0.3 s of frames + tolerance + anchor lag."""
        problems = field_problems(self, prefix)
        span = -min(ALPAMAYO_R1_FRAME_OFFSETS_SEC) + self.tolerance_sec + self.max_anchor_lag_sec
        if self.buffer_sec < span:
            problems.append(
                f"{prefix}buffer_sec = {self.buffer_sec} is shorter than 0.3 s of frames + tolerance + anchor lag "
                f"({span:.3f} s)"
            )
        return problems


@dataclass(frozen=True)
class SyncConfig:
    """Synchronisation policy for one model: the user's settings plus the cameras and frame times the model reads.

    Offsets are seconds relative to t0, oldest first, all <= 0. The buffer holds at least the model's oldest frame
    plus tolerance, anchor lag and 0.1 s margin, whatever ``params.buffer_sec`` says.
    """

    cameras: tuple[str, ...]  # every subscribed camera (checked and reported)
    required: tuple[str, ...]  # the cameras the model consumes, in model order
    frame_offsets_sec: tuple[float, ...]
    params: SyncParams = field(default_factory=SyncParams)
    max_frames_per_camera: int = 64

    @property
    def anchor(self) -> str:
        return self.params.anchor_camera

    @property
    def buffer_sec(self) -> float:
        span = -min(self.frame_offsets_sec, default=0.0)
        return max(self.params.buffer_sec, span + self.params.tolerance_sec + self.params.max_anchor_lag_sec + 0.1)

    def validate(self) -> None:
        """Raise ValueError naming the offending value."""
        if not self.frame_offsets_sec:
            raise ValueError("the model declares no frame offsets")
        if self.anchor not in self.cameras:
            raise ValueError(f"anchor camera {self.anchor!r} is not one of the subscribed cameras {self.cameras}")
        missing = [c for c in self.required if c not in self.cameras]
        if missing:
            raise ValueError(f"the model needs cameras {missing} that are not subscribed")
        if any(off > 0 for off in self.frame_offsets_sec):
            raise ValueError(f"frame offsets must be <= 0 s, got {self.frame_offsets_sec}")
        if self.params.missing_camera_policy not in MISSING_CAMERA_POLICIES:
            policy = self.params.missing_camera_policy
            raise ValueError(f"missing camera policy {policy!r} is not one of {', '.join(MISSING_CAMERA_POLICIES)}")


@dataclass(eq=False)
class FrameEntry:
    """One buffered frame. ``error`` marks a frame known to be unusable (kept so that sync can say why)."""

    stamp_ns: int
    payload: Any
    size_wh: tuple[int, int] | None = None  # native size when known without decoding
    error: str | None = None
    _cache: tuple[tuple[int, int] | None, UInt8Array] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CameraProblem:
    camera: str
    reason: str


@dataclass(frozen=True)
class SyncFailure:
    """No sample can be planned on; ``problems`` names each camera and why."""

    t0_ns: int | None
    problems: tuple[CameraProblem, ...]

    def summary(self) -> str:
        return "; ".join(f"{p.camera}: {p.reason}" for p in self.problems)


@dataclass(frozen=True)
class SyncedSample:
    """Frames chosen for one t0: per required camera one entry per frame offset (None = black fill)."""

    t0_ns: int
    frames: dict[str, tuple[FrameEntry | None, ...]]
    filled: dict[str, str]  # camera -> why it was filled (empty under the skip policy)
    warnings: tuple[CameraProblem, ...]  # problems of cameras the model does not consume


def _fmt_ms(ns: int) -> str:
    return f"{ns / 1e6:.0f} ms"


class FrameSynchronizer:
    """Per-camera ring buffers ordered by stamp, and the anchor/tolerance selection. Not thread-safe."""

    def __init__(self, config: SyncConfig) -> None:
        config.validate()
        self.config = config
        self._stamps: dict[str, list[int]] = {c: [] for c in config.cameras}
        self._entries: dict[str, list[FrameEntry]] = {c: [] for c in config.cameras}
        self._tol_ns = int(config.params.tolerance_sec * 1e9)
        self._buffer_ns = int(config.buffer_sec * 1e9)
        self._lag_ns = int(config.params.max_anchor_lag_sec * 1e9)
        self._jump_ns = int(config.params.backwards_jump_sec * 1e9)
        self._offsets_ns = tuple(round(off * 1e9) for off in config.frame_offsets_sec)

    def flush(self) -> None:
        for cam in self.config.cameras:
            self._stamps[cam].clear()
            self._entries[cam].clear()

    def newest_stamp_ns(self, camera: str) -> int | None:
        stamps = self._stamps[camera]
        return stamps[-1] if stamps else None

    def __len__(self) -> int:
        return sum(len(v) for v in self._stamps.values())

    def add(self, camera: str, entry: FrameEntry) -> BufferOutcome:
        """Buffer a frame of ``camera`` (KeyError for an unknown camera)."""
        stamps, entries = self._stamps[camera], self._entries[camera]
        outcome = BufferOutcome.ADDED
        if stamps and entry.stamp_ns <= stamps[-1]:
            if entry.stamp_ns < stamps[-1] - self._jump_ns:
                self.flush()
                outcome = BufferOutcome.TIME_JUMPED_BACK
            elif entry.stamp_ns < stamps[-1] - self._buffer_ns:
                return BufferOutcome.TOO_OLD
            else:
                idx = bisect.bisect_left(stamps, entry.stamp_ns)
                if idx < len(stamps) and stamps[idx] == entry.stamp_ns:
                    return BufferOutcome.DUPLICATE
                stamps.insert(idx, entry.stamp_ns)
                entries.insert(idx, entry)
                return BufferOutcome.OUT_OF_ORDER
        stamps.append(entry.stamp_ns)
        entries.append(entry)
        cutoff = entry.stamp_ns - self._buffer_ns
        drop = bisect.bisect_left(stamps, cutoff)
        drop = max(drop, len(stamps) - self.config.max_frames_per_camera)
        if drop > 0:
            del stamps[:drop]
            del entries[:drop]
        return outcome

    def _nearest(self, camera: str, target_ns: int) -> FrameEntry | None:
        stamps = self._stamps[camera]
        if not stamps:
            return None
        idx = bisect.bisect_left(stamps, target_ns)
        best = None
        for j in (idx - 1, idx):
            if 0 <= j < len(stamps) and (best is None or abs(stamps[j] - target_ns) < abs(stamps[best] - target_ns)):
                best = j
        return None if best is None else self._entries[camera][best]

    def _check(self, camera: str, target_ns: int, offset_ns: int) -> tuple[FrameEntry | None, str | None]:
        """The usable frame for one camera and frame time, or the reason there is none."""
        entry = self._nearest(camera, target_ns)
        at = f"t0{offset_ns / 1e9:+.1f} s" if offset_ns else "t0"
        if entry is None:
            return None, "no frames received"
        dist_ns = entry.stamp_ns - target_ns
        if abs(dist_ns) > self._tol_ns:
            side = "before" if dist_ns < 0 else "after"
            return None, (f"nearest frame is {_fmt_ms(abs(dist_ns))} {side} {at} (tolerance {_fmt_ms(self._tol_ns)})")
        if entry.error is not None:
            return None, f"frame at {at} is unusable: {entry.error}"
        return entry, None

    def frame_at(self, camera: str, t_ns: int) -> FrameEntry | None:
        """The usable frame of ``camera`` nearest ``t_ns`` within tolerance (e.g. for the overlay), or None."""
        entry, _ = self._check(camera, t_ns, 0)
        return entry

    def select(self) -> SyncedSample | SyncFailure:
        """The newest complete sample, or why there is none (problems of the newest anchor frame)."""
        cfg = self.config
        anchor_stamps = self._stamps[cfg.anchor]
        if not anchor_stamps:
            return SyncFailure(None, (CameraProblem(cfg.anchor, "no frames received from the anchor camera"),))
        newest = anchor_stamps[-1]
        first_failure: SyncFailure | None = None
        for t0_ns in reversed(anchor_stamps):
            if t0_ns < newest - self._lag_ns:
                break
            result = self._select_at(t0_ns)
            if isinstance(result, SyncedSample):
                return result
            if first_failure is None:
                first_failure = result
        assert first_failure is not None
        return first_failure

    def _select_at(self, t0_ns: int) -> SyncedSample | SyncFailure:
        cfg = self.config
        problems: list[CameraProblem] = []
        frames: dict[str, tuple[FrameEntry | None, ...]] = {}
        filled: dict[str, str] = {}
        for cam in cfg.required:
            chosen: list[FrameEntry | None] = []
            for off_ns in self._offsets_ns:
                entry, reason = self._check(cam, t0_ns + off_ns, off_ns)
                if reason is not None:
                    if cfg.params.missing_camera_policy == "skip":
                        problems.append(CameraProblem(cam, reason))
                        break
                    filled.setdefault(cam, reason)
                    entry = self._nearest(cam, t0_ns + off_ns) if cfg.params.missing_camera_policy == "hold" else None
                    if entry is not None and entry.error is not None:
                        entry = None
                chosen.append(entry)
            frames[cam] = tuple(chosen)
        if problems:
            return SyncFailure(t0_ns, tuple(problems))
        warnings = []
        for cam in cfg.cameras:
            if cam not in cfg.required:
                _, reason = self._check(cam, t0_ns, 0)
                if reason is not None:
                    warnings.append(CameraProblem(cam, reason))
        return SyncedSample(t0_ns, frames, filled, tuple(warnings))


class ImageAssemblyError(ValueError):
    """A chosen frame turned out unusable while decoding; names camera and stamp."""

    def __init__(self, camera: str, stamp_ns: int | None, reason: str) -> None:
        self.camera = camera
        self.stamp_ns = stamp_ns
        self.reason = reason
        at = f" frame {stamp_ns}" if stamp_ns is not None else ""
        super().__init__(f"{camera}{at}: {reason}")


def assemble_images(
    sample: SyncedSample,
    decode: Callable[[Any], UInt8Array],
    size_hw: tuple[int, int] | None,
) -> dict[str, UInt8Array]:
    """Decode (once per frame; cached on the entry), resize and stack: camera -> (T, H, W, 3) uint8 RGB.

    Without a model size (``size_hw`` None) all frames of a camera must share their native size: a size change
    inside one sample is an error rather than a silent resize. A decode failure is remembered on the entry, so
    the synchroniser reports it instead of decoding the same bytes again.
    """
    out: dict[str, UInt8Array] = {}
    for cam, entries in sample.frames.items():
        frames: list[UInt8Array | None] = []
        for entry in entries:
            if entry is None:
                frames.append(None)
                continue
            cached = entry._cache
            if cached is not None and cached[0] == size_hw:
                frames.append(cached[1])
                continue
            try:
                rgb = resize_rgb(decode(entry.payload), size_hw)
            except ImageConversionError as exc:
                entry.error = str(exc)
                raise ImageAssemblyError(cam, entry.stamp_ns, str(exc)) from exc
            entry._cache = (size_hw, rgb)
            frames.append(rgb)
        shapes = {f.shape for f in frames if f is not None}
        if len(shapes) > 1:
            sizes = " -> ".join(f"{s[1]}x{s[0]}" for s in sorted(shapes, key=lambda s: s[0] * s[1]))
            raise ImageAssemblyError(cam, None, f"image size changed within one sample ({sizes})")
        if shapes:
            shape = shapes.pop()
        elif size_hw is not None:
            shape = (*size_hw, 3)
        else:
            raise ImageAssemblyError(cam, None, "every frame is a fill and the model gives no image size")
        stack = np.empty((len(frames), *shape), np.uint8)
        for i, f in enumerate(frames):
            stack[i] = 0 if f is None else f
        out[cam] = stack
    return out
