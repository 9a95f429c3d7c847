"""Result types of an open-loop evaluation: one planning tick, one bag. Shared by the evaluation and its report.

Geometry is XY in the t0 ego frame (x forward, y left), metres; times are ROS nanoseconds or seconds as named.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpamayo_ros.core.decisions import Agreement, Decision
from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.tools import metrics


@dataclass
class TickResult:
    """One planning tick: the plan, the truth, the baseline and the verdicts (XY in the t0 ego frame, metres)."""

    bag: str
    t0_ns: int
    t_sec: float  # since the bag's first message
    speed_mps: float
    pred_xy: FloatArray  # (S, 64, 2)
    gt_xy: FloatArray  # (64, 2)
    baseline_xy: FloatArray  # (64, 2)
    reasoning: str
    stated: Decision
    shown: Decision
    agreement: Agreement
    agreement_detail: str
    reference: Decision | None
    reference_text: str
    errors: metrics.TickErrors
    baseline_errors: metrics.TickErrors
    latency_ms: float | None
    uncertainty: float = math.nan  # reasoning_uncertainty of sample 0 (NaN: not reported by the backend / bag)
    frames: dict[str, UInt8Array] = field(default_factory=dict)  # small RGB per camera (report ticks only)
    overlay_rgb: UInt8Array | None = None  # full-size front camera frame (report ticks only)


@dataclass
class BagEvaluation:
    bag: Path
    sidecar: dict[str, Any] | None
    anchor_frames: int = 0
    ticks: list[TickResult] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    model_failures: Counter[str] = field(default_factory=Counter)  # reason -> ticks (also counted in skipped)
    camera_info: dict[str, Any] = field(default_factory=dict)  # camera -> (k (9,), width, height)
