"""Typed containers handed between the node, the tools and the model runtime.

Frames: everything geometric is in the *t0 ego frame* (x forward, y left, z up, origin = rear-axle
reference point of the ego at the anchor camera's time t0), metres and seconds, as the model expects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
UInt8Array = npt.NDArray[np.uint8]

# Subscription QoS reliabilities an input may name; best_effort also receives from reliable publishers.
RELIABILITIES: tuple[str, ...] = ("best_effort", "reliable")


class BufferOutcome(enum.Enum):
    """What a time-ordered input buffer (camera frames, odometry) did with one message; the value is a log phrase."""

    ADDED = "added"
    OUT_OF_ORDER = "out-of-order stamp (inserted in order)"
    DUPLICATE = "duplicate stamp (dropped)"
    TOO_OLD = "older than the buffer (dropped)"
    TIME_JUMPED_BACK = "time jumped backwards (buffers flushed)"
    STRAY_BACKWARDS = "stamp far behind the stream (dropped; a consistent jump back flushes the buffers)"
    CONFLICTING_DUPLICATE = "duplicate stamp with different content (dropped)"
    FRAME_CHANGED = "frame changed (buffer restarted in the new frame)"
    BAD_STAMP = "stamp is not a time (dropped)"


@dataclass(frozen=True)
class EgoHistory:
    """Past ego poses in the t0 ego frame, oldest first; the last pose is the origin with identity rotation."""

    xyz: FloatArray  # (16, 3) metres
    rotation: FloatArray  # (16, 3, 3) rotation matrices (ego_i -> t0 frame)
    offsets_sec: FloatArray  # (16,) times relative to t0, e.g. -1.5 .. 0.0


@dataclass(frozen=True)
class ModelInput:
    """One synchronized sample: what a model needs to plan at t0."""

    t0_ns: int  # anchor camera stamp (ROS time, nanoseconds)
    # Per camera name (see core.rig): (T, H, W, 3) uint8 RGB frames, oldest first, at the model's frame offsets.
    images: dict[str, UInt8Array]
    frame_offsets_sec: tuple[float, ...]
    ego_history: EgoHistory


@dataclass(frozen=True)
class StageTimings:
    """Wall-clock milliseconds per inference stage (0 where a backend has no such stage)."""

    preprocess_ms: float = 0.0
    vision_ms: float = 0.0
    reasoning_ms: float = 0.0
    action_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class Prediction:
    """Model output for one ModelInput: S trajectory samples, each with its own reasoning."""

    xyz: FloatArray  # (S, 64, 3) waypoints in the t0 ego frame, waypoint i at t0 + (i+1) * 0.1 s
    rotation: FloatArray  # (S, 64, 3, 3)
    reasoning: tuple[str, ...]  # (S,) Chain-of-Causation text per sample
    num_generated_tokens: tuple[int, ...]  # (S,)
    truncated: tuple[bool, ...]  # (S,) token budget ran out before the reasoning finished
    timings: StageTimings = field(default_factory=StageTimings)
    # (S,) per sample, the natural-log probability of each generated reasoning token under the model (temperature 1),
    # num_generated_tokens long; None where a backend's decode loop does not report them
    token_logprobs: tuple[FloatArray, ...] | None = None

    @property
    def num_samples(self) -> int:
        return int(self.xyz.shape[0])


@dataclass(frozen=True)
class ModelInfo:
    """What the node needs to know about a model to feed it and to label its output."""

    name: str  # e.g. "alpamayo-r1"
    version: str  # checkpoint identity (version string or weights hash prefix)
    cameras: tuple[str, ...]  # camera names the model consumes, in its order
    frame_offsets_sec: tuple[float, ...]  # frame times relative to t0 per camera, oldest first
    image_size_hw: tuple[int, int] | None  # size the node resizes frames to; None = model resizes itself
    untrained: bool = False  # random or toy weights: every display of its output says so


@runtime_checkable
class DrivingModel(Protocol):
    """The node's model interface: sample in; trajectories, reasoning and stage timings out."""

    @property
    def info(self) -> ModelInfo: ...

    def predict(self, sample: ModelInput) -> Prediction:
        """Plan for one sample. Raises on failure; never returns a partial prediction."""
        ...

    def close(self) -> None:
        """Release weights and device memory (lifecycle cleanup)."""
        ...
