"""Open-loop trajectory metrics (pure numpy): ADE / FDE / minADE at horizons, XY only, plus a baseline.

Conventions (as the Alpamayo authors report them): trajectories are (64, 2) XY in the t0 ego frame, waypoint i at
t0 + (i+1) * 0.1 s. At horizon h seconds (n = round(h / 0.1) waypoints): ADE@h = mean L2 over the first n
waypoints of ONE sample (the first: what the node publishes); FDE@h = L2 at waypoint n; minADE@h / minFDE@h = the
minimum over the model's samples. Metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.diagnostics import DiagnosticsParams
from alpamayo_ros.core.rig import FUTURE_STEPS, STEP_SEC
from alpamayo_ros.core.types import FloatArray

HORIZONS_SEC: tuple[float, ...] = (0.5, 1.0, 3.0, 5.0, 6.4)


def horizon_steps(horizon_sec: float, step_sec: float = STEP_SEC) -> int:
    return round(horizon_sec / step_sec)


@dataclass(frozen=True)
class TickErrors:
    """Errors of one planning tick, keyed by horizon label ('0.5s', ..., '6.4s')."""

    ade: dict[str, float]
    fde: dict[str, float]
    min_ade: dict[str, float]
    min_fde: dict[str, float]


def _label(h: float) -> str:
    return f"{h:g}s"


def displacement(pred_xy: npt.ArrayLike, gt_xy: npt.ArrayLike) -> FloatArray:
    """(S, N, 2) or (N, 2) predictions vs (N, 2) ground truth -> (S, N) L2 per sample and waypoint."""
    pred = np.asarray(pred_xy, dtype=np.float64)
    if pred.ndim == 2:
        pred = pred[None]
    gt = np.asarray(gt_xy, dtype=np.float64)
    if pred.shape[1:] != gt.shape or gt.shape[-1] != 2:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} do not match as (S, N, 2) / (N, 2)")
    return np.linalg.norm(pred - gt[None], axis=-1)  # type: ignore[no-any-return]


def tick_errors(pred_xy: npt.ArrayLike, gt_xy: npt.ArrayLike, horizons: tuple[float, ...] = HORIZONS_SEC) -> TickErrors:
    err = displacement(pred_xy, gt_xy)
    out: dict[str, dict[str, float]] = {"ade": {}, "fde": {}, "min_ade": {}, "min_fde": {}}
    for h in horizons:
        n = horizon_steps(h)
        if not 1 <= n <= err.shape[1]:
            raise ValueError(f"horizon {h} s needs {n} waypoints, trajectory has {err.shape[1]}")
        per_sample_ade = err[:, :n].mean(axis=1)
        per_sample_fde = err[:, n - 1]
        key = _label(h)
        out["ade"][key] = float(per_sample_ade[0])
        out["fde"][key] = float(per_sample_fde[0])
        out["min_ade"][key] = float(per_sample_ade.min())
        out["min_fde"][key] = float(per_sample_fde.min())
    return TickErrors(out["ade"], out["fde"], out["min_ade"], out["min_fde"])


def mean_errors(ticks: list[TickErrors]) -> dict[str, dict[str, float]]:
    """Mean of every metric over ticks ({} when there are none)."""
    if not ticks:
        return {}
    result: dict[str, dict[str, float]] = {}
    for name in ("ade", "fde", "min_ade", "min_fde"):
        keys = getattr(ticks[0], name).keys()
        result[name] = {k: float(np.mean([getattr(t, name)[k] for t in ticks])) for k in keys}
    return result


def constant_velocity(
    history_xyz: npt.ArrayLike, steps: int = FUTURE_STEPS, step_sec: float = STEP_SEC, window: int = 3
) -> FloatArray:
    """Baseline: extrapolate the mean XY velocity of the last ``window`` history steps (t0 ego frame).

    history_xyz: (16, 3) oldest first, the last pose at the origin. Returns (steps, 2).
    """
    hist = np.asarray(history_xyz, dtype=np.float64)[:, :2]
    w = min(window, len(hist) - 1)
    velocity = (hist[-1] - hist[-1 - w]) / (w * step_sec)
    t = (np.arange(steps) + 1) * step_sec
    return t[:, None] * velocity[None, :]  # type: ignore[no-any-return]


def rate(flags: list[bool]) -> float | None:
    """Fraction of True, None when there is nothing to count."""
    return float(np.mean(flags)) if flags else None


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for ``positives``: the chance that a random positive scores above a
    random negative (ties count half). None when either class is empty."""
    if not any(positives) or all(positives):
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(positives, dtype=bool), np.asarray(scores, dtype=np.float64)))


def uncertainty_summary(
    ticks: Sequence[tuple[float, bool | None]], warn_at: float = DiagnosticsParams().uncertainty_warn
) -> dict[str, Any] | None:
    """Figures of the reasoning-uncertainty signal over (uncertainty, decision wrong or None without a reference)
    per tick: the mean over ticks that report it, how well it ranks wrong decisions above right ones (the area
    under the ROC curve: 0.5 is chance, None when a class is empty), and what the node's warning at ``warn_at``
    (``diagnostics.uncertainty_warn``) would flag: the share of right and of wrong decisions above it (None when
    there are none). None when no tick reports an uncertainty."""
    known = [(u, wrong) for u, wrong in ticks if not math.isnan(u)]
    if not known:
        return None
    scored = [(u, wrong) for u, wrong in known if wrong is not None]
    right_u = [u for u, wrong in scored if not wrong]
    wrong_u = [u for u, wrong in scored if wrong]
    return {
        "mean": float(np.mean([u for u, _ in known])),
        "ticks": len(known),
        "auroc_decision_wrong": auroc([u for u, _ in scored], [bool(wrong) for _, wrong in scored]),
        "wrong_decisions": len(wrong_u),
        "scored_decisions": len(scored),
        "warn_at": warn_at,
        "flagged_right": rate([u > warn_at for u in right_u]),
        "flagged_wrong": rate([u > warn_at for u in wrong_u]),
    }
