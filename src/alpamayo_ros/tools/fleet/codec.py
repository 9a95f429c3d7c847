"""A bag's evaluation as plain JSON-able data, for the trip from a worker back to the driver.

Only what the merged ``metrics.json`` and the report's tables and plots need crosses: per tick the errors, the
verdicts, the reasoning and the recorded future (64 x 2 floats, for the label sanity check); never camera frames or
the planned samples, so a result stays a few kB per tick and the driver's memory does not grow with frames. Python
floats survive JSON exactly (shortest round-trip repr), so the driver's numbers equal the worker's bit for bit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from alpamayo_ros.core.decisions import Agreement, Decision, Lateral, Longitudinal
from alpamayo_ros.core.rig import FUTURE_STEPS
from alpamayo_ros.tools.metrics import TickErrors
from alpamayo_ros.tools.results import BagEvaluation, TickResult


def _decision(d: Decision | None) -> list[int] | None:
    return None if d is None else [int(d.longitudinal), int(d.lateral)]


def _undecision(v: list[int] | None) -> Decision | None:
    return None if v is None else Decision(Longitudinal(v[0]), Lateral(v[1]))


def _errors(e: TickErrors) -> dict[str, dict[str, float]]:
    return {"ade": e.ade, "fde": e.fde, "min_ade": e.min_ade, "min_fde": e.min_fde}


def encode_tick(t: TickResult) -> dict[str, Any]:
    return {
        "t0_ns": t.t0_ns,
        "t_sec": t.t_sec,
        "speed_mps": t.speed_mps,
        "gt_xy": np.asarray(t.gt_xy, dtype=np.float64).tolist(),
        "reasoning": t.reasoning,
        "stated": _decision(t.stated),
        "shown": _decision(t.shown),
        "agreement": int(t.agreement),
        "agreement_detail": t.agreement_detail,
        "reference": _decision(t.reference),
        "reference_text": t.reference_text,
        "errors": _errors(t.errors),
        "baseline_errors": _errors(t.baseline_errors),
        "latency_ms": t.latency_ms,
    }


def decode_tick(bag: str, d: dict[str, Any]) -> TickResult:
    stated, shown = _undecision(d["stated"]), _undecision(d["shown"])
    assert stated is not None and shown is not None
    return TickResult(
        bag=bag,
        t0_ns=int(d["t0_ns"]),
        t_sec=float(d["t_sec"]),
        speed_mps=float(d["speed_mps"]),
        pred_xy=np.zeros((0, FUTURE_STEPS, 2)),  # not carried: only the report's per-tick pictures draw it
        gt_xy=np.asarray(d["gt_xy"], dtype=np.float64).reshape(FUTURE_STEPS, 2),
        baseline_xy=np.zeros((FUTURE_STEPS, 2)),
        reasoning=d["reasoning"],
        stated=stated,
        shown=shown,
        agreement=Agreement(d["agreement"]),
        agreement_detail=d["agreement_detail"],
        reference=_undecision(d["reference"]),
        reference_text=d["reference_text"],
        errors=TickErrors(**d["errors"]),
        baseline_errors=TickErrors(**d["baseline_errors"]),
        latency_ms=d["latency_ms"],
    )


def encode_evaluation(ev: BagEvaluation) -> dict[str, Any]:
    return {
        "bag": str(ev.bag),
        "sidecar": ev.sidecar,
        "anchor_frames": ev.anchor_frames,
        "skipped": dict(ev.skipped),
        "model_failures": dict(ev.model_failures),
        "camera_info": {cam: [np.asarray(k).tolist(), w, h] for cam, (k, w, h) in ev.camera_info.items()},
        "ticks": [encode_tick(t) for t in ev.ticks],
    }


def decode_evaluation(d: dict[str, Any]) -> BagEvaluation:
    bag = Path(d["bag"])
    return BagEvaluation(
        bag=bag,
        sidecar=d["sidecar"],
        anchor_frames=int(d["anchor_frames"]),
        ticks=[decode_tick(bag.name, t) for t in d["ticks"]],
        skipped=Counter(d["skipped"]),
        model_failures=Counter(d["model_failures"]),
        camera_info={cam: (np.asarray(k, dtype=np.float64), w, h) for cam, (k, w, h) in d["camera_info"].items()},
    )
