"""The hostile inputs of the hardening issue, each as an injection into a running feeder and the rules to judge it.

A case sends its bad message(s) through ``node_harness``'s feeder and says which diagnostic status must name the
problem. ``tainted_plans`` decides which received plans could only exist if a bad message had been used:

- a camera frame stamped s reaches a plan only through t0 = s - offset (within the sync tolerance) for one of the
  model's frame offsets, and only if the model reads that camera; such a plan after a refused frame means the frame
  was used (its slot has no other frame: cameras are 100 ms apart, the tolerance is 50 ms);
- odometry refused for longer than ``ego.max_gap_sec`` leaves t0 inside the hole without an ego pose;
- a duplicate odometry stamp with a pose 3 m to the left, taken instead of the first, moves the odom-frame plan of
  that t0 3 m sideways (the true ego drives along y = 0);
- any plan with a non-finite pose is bad whatever caused it.
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np
from node_harness import SEC, Injection

SYNC_TOLERANCE_NS = 50_000_000  # sync.tolerance_sec's default
ODOM_MAX_GAP_NS = 250_000_000  # ego.max_gap_sec's default
DUPLICATE_SHIFT_M = 3.0


@dataclass(frozen=True)
class Rig:
    """Which cameras get the bad frames, the frame size, and what the node's model reads."""

    raw_camera: str
    jpeg_camera: str
    anchor_camera: str
    size_hw: tuple[int, int]
    model_cameras: tuple[str, ...]
    model_offsets_sec: tuple[float, ...]


@dataclass(frozen=True)
class Case:
    name: str
    what: str  # the words for it
    stream: Callable[[Rig], str]  # camera name or "odometry"
    send: Callable[[Any, Rig], list[Injection]]
    expect: tuple[str, ...]  # the stream's last_error must contain one of these
    quick: bool = True  # sent within ~0.1 s (the soak's hostile run mixes only these)


# --- payloads ----------------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def png_bomb(side: int = 20_000) -> bytes:
    """A valid 8-bit grey PNG of side x side black pixels: ~390 KB that inflate to side^2 bytes (400 MB at 20000)."""
    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0 + a row of zeros
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@cache
def jpeg(size_hw: tuple[int, int]) -> bytes:
    """A real JPEG of noise (so the entropy-coded data is long enough to cut)."""
    pixels = np.random.default_rng(0).integers(0, 255, (*size_hw, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", pixels)
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return bytes(buf.tobytes())


def jpeg_declaring(size_hw: tuple[int, int], width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to declare width x height."""
    data = bytearray(jpeg(size_hw))
    sof = data.find(b"\xff\xc0")
    if sof < 0:
        raise RuntimeError("OpenCV's JPEG has no baseline SOF0 marker")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_truncated(size_hw: tuple[int, int]) -> bytes:
    """Headers intact, entropy-coded data cut 200 bytes after the start of scan: readable size, undecodable."""
    data = jpeg(size_hw)
    return data[: data.find(b"\xff\xda") + 200]


# --- how each case is sent ---------------------------------------------------------------------------------------


def _frames(camera: Callable[[Rig], str], mangle: Callable[[Any, Rig], None], count: int = 1) -> Any:
    def send(feeder: Any, rig: Rig) -> list[Injection]:
        return [feeder.inject_frames(camera(rig), lambda msg: mangle(msg, rig), count)]

    return send


def _raw(rig: Rig) -> str:
    return rig.raw_camera


def _jpeg(rig: Rig) -> str:
    return rig.jpeg_camera


def _anchor(rig: Rig) -> str:
    return rig.anchor_camera


def _odometry(_rig: Rig) -> str:
    return "odometry"


def _set(**fields: Any) -> Callable[[Any, Rig], None]:
    def mangle(msg: Any, _rig: Rig) -> None:
        for name, value in fields.items():
            setattr(msg, name, value)

    return mangle


def _compressed(fmt: str, payload: Callable[[Rig], bytes]) -> Callable[[Any, Rig], None]:
    def mangle(msg: Any, rig: Rig) -> None:
        msg.format, msg.data = fmt, payload(rig)

    return mangle


def _resized(height: int, width: int) -> Callable[[Any, Rig], None]:
    return _set(height=height, width=width, step=width * 3, data=bytes(width * 3 * height))


def _half_size(msg: Any, rig: Rig) -> None:
    h, w = rig.size_hw[0] // 2, rig.size_hw[1] // 2
    _resized(h, w)(msg, rig)


def _future_once_per_second(feeder: Any, rig: Rig) -> list[Injection]:
    def ahead(msg: Any) -> None:
        msg.header.stamp.sec += 1000

    sent = []
    for k in range(5):
        if k:
            time.sleep(1.0)
        sent.append(feeder.inject_frames(rig.anchor_camera, ahead))
    return sent


def _stamp_shift(seconds: int | None) -> Callable[[Any, Rig], None]:
    def mangle(msg: Any, _rig: Rig) -> None:
        if seconds is None:
            msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
        else:
            msg.header.stamp.sec += seconds

    return mangle


def _odom_nan(msg: Any) -> None:
    msg.pose.pose.position.x = math.nan


def _odom_inf_twist(msg: Any) -> None:
    msg.twist.twist.linear.x = math.inf


def _odom_moved(msg: Any) -> None:
    msg.pose.pose.position.y += DUPLICATE_SHIFT_M


CASES: tuple[Case, ...] = (
    Case("png_bomb", "PNG decompression bomb (20000x20000, 390 KB)", _jpeg,
         _frames(_jpeg, _compressed("png", lambda _r: png_bomb())), ("declares a huge size",)),
    Case("jpeg_header_8000", "JPEG whose header declares 8000x8000", _jpeg,
         _frames(_jpeg, _compressed("jpeg", lambda r: jpeg_declaring(r.size_hw, 8000, 8000))),
         ("more than input.max_image_pixels",)),
    Case("tiny_1x1", "1x1 frame", _raw, _frames(_raw, _resized(1, 1)), ("below input.min_image_side_px",)),
    Case("size_change", "3 frames at half size (a size change)", _raw, _frames(_raw, _half_size, 3),
         ("image size changed from",)),
    Case("future_stamp", "far-future stamp (+1000 s) once per second on one camera, 5 s", _anchor,
         _future_once_per_second, ("ahead of the clock",), quick=False),
    Case("jpeg_no_header", "undecodable JPEG (no readable header)", _jpeg,
         _frames(_jpeg, _compressed("jpeg", lambda _r: b"\xff\xd8\xff\xe0 not a jpeg at all" * 4)),
         ("no readable header",)),
    Case("jpeg_truncated", "JPEG cut after its headers (size readable, pixels not)", _jpeg,
         _frames(_jpeg, _compressed("jpeg", lambda r: jpeg_truncated(r.size_hw))), ("truncated",)),
    Case("short_data", "raw data shorter than step x height", _raw,
         _frames(_raw, lambda m, _r: setattr(m, "data", bytes(m.data)[:100])), ("the data is",)),
    Case("long_data", "raw data longer than step x height", _raw,
         _frames(_raw, lambda m, _r: setattr(m, "data", bytes(m.data) + bytes(7))), ("the data is",)),
    Case("bad_step", "row step narrower than a row", _raw, _frames(_raw, _set(step=10)), ("row step 10 B",)),
    Case("aspect_40_1", "extreme aspect ratio (640x16)", _raw, _frames(_raw, _resized(16, 640)), ("aspect ratio",)),
    Case("encoding_32FC1", "unsupported encoding (32FC1)", _raw, _frames(_raw, _set(encoding="32FC1")),
         ("32FC1",)),
    Case("zero_stamp", "frame with a zero stamp", _raw, _frames(_raw, _stamp_shift(None)), ("zero stamp",)),
    Case("stamp_5s_behind", "one frame stamped 5 s behind its stream", _raw, _frames(_raw, _stamp_shift(-5)),
         ("behind the stream", "older than the buffer")),
    Case("odom_duplicate_pose", "duplicate odometry stamp with a pose 3 m aside", _odometry,
         lambda fd, _r: [fd.inject_odometry_duplicate(_odom_moved)], ("different content",)),
    Case("odom_nan_0.5s", "NaN odometry pose for 0.5 s", _odometry,
         lambda fd, _r: [fd.inject_odometry(_odom_nan, 25)], ("non-finite",), quick=False),
    Case("odom_inf_twist", "one odometry message with an infinite twist", _odometry,
         lambda fd, _r: [fd.inject_odometry(_odom_inf_twist)], ("non-finite",)),
)  # fmt: skip
CASE_NAMES = tuple(case.name for case in CASES)


def case_named(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"no hostile case {name!r} (one of {', '.join(CASE_NAMES)})")


# --- judging -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaintWindow:
    """Plans with t0 in [start_ns, end_ns] that arrived after ``sent_at`` (monotonic s) could only use ``message``."""

    start_ns: int
    end_ns: int
    sent_at: float
    message: str


def taint_windows(injections: list[Injection], rig: Rig) -> list[TaintWindow]:
    """The t0 ranges of plans that could only have been built from these bad messages.

    Only plans that arrive after a message was sent can be built from it: a frame stamped 5 s in the past shares
    its t0 with a good plan published 5 s earlier.
    """
    windows: list[TaintWindow] = []
    for injection in injections:
        if injection.stream == "odometry":
            if len(injection.sent_ns) > 1:  # a hole longer than the interpolation may bridge
                first, last = min(injection.original_ns), max(injection.original_ns)
                if last - first > ODOM_MAX_GAP_NS:
                    label = f"odometry refused from {first / SEC:.2f} to {last / SEC:.2f} s"
                    windows.append(TaintWindow(first + ODOM_MAX_GAP_NS, last, injection.sent_at[0], label))
            continue
        if injection.stream not in rig.model_cameras:
            continue
        for original, sent, sent_at in zip(injection.original_ns, injection.sent_ns, injection.sent_at, strict=True):
            label = f"{injection.stream} frame stamped {sent / SEC:.2f} s (in the slot of {original / SEC:.2f} s)"
            for stamp in {original, sent}:
                for offset in rig.model_offsets_sec:
                    t0 = stamp - round(offset * SEC)
                    windows.append(TaintWindow(t0 - SYNC_TOLERANCE_NS, t0 + SYNC_TOLERANCE_NS, sent_at, label))
    return windows


def tainted_plans(
    plans: list[Any],
    arrivals: dict[int, float],
    odom_first_y: dict[int, float],
    injections: list[Injection],
    rig: Rig,
) -> list[tuple[int, str]]:
    """(t0 ns, why) of every received plan that used a bad message.

    Args:
        plans: the received nav_msgs/Path messages.
        arrivals: t0 ns -> monotonic s the plan arrived (a plan missing here counts as arriving after everything).
        odom_first_y: t0 ns -> lateral position (m) of the first pose of the odom-frame plan.
        injections: the bad messages sent.
        rig: what the node's model reads.
    """
    windows = taint_windows(injections, rig)
    duplicates = {s for i in injections if i.stream == "odometry" and len(i.sent_ns) == 1 for s in i.original_ns}
    bad: list[tuple[int, str]] = []
    for path in plans:
        t0 = int(path.header.stamp.sec) * SEC + int(path.header.stamp.nanosec)
        arrived = arrivals.get(t0, math.inf)
        hit = next((w for w in windows if w.start_ns <= t0 <= w.end_ns and arrived >= w.sent_at), None)
        if hit is not None:
            bad.append((t0, hit.message))
        elif not all(math.isfinite(p.pose.position.x) and math.isfinite(p.pose.position.y) for p in path.poses):
            bad.append((t0, "non-finite pose"))
        elif t0 in duplicates and abs(odom_first_y.get(t0, 0.0)) > DUPLICATE_SHIFT_M / 2:
            bad.append((t0, "the duplicate odometry pose"))
    return bad
