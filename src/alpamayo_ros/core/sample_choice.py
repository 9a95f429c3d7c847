"""Which of a prediction's samples becomes the plan.

The model samples: each inference draws its reasoning and its trajectory from the model's distribution, so with one
sample a tick's plan carries that draw's noise, and consecutive plans of one scene can bend by several metres at 3 s
while saying the same words; a tracker sent such plans follows something like their average, which on a bend can
be too little turn (``docs/generalisation.md``, "One plan from five samples"). With ``model.num_samples`` > 1,
``medoid`` plans on the sample whose trajectory lies closest to the others': a consensus among the draws that is
still one of them (reasoning, trajectory and consistency report stay a matched set), where the mean of the samples
would be a trajectory no draw proposed and no reasoning explains (the mean of "stop" and "go" is neither).

Publishers, the consistency monitor's plan verdict, the evaluation and the simulator plan on sample 0, so the choice
is made by putting the chosen sample first; the others keep their order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alpamayo_ros.core.types import FloatArray, Prediction

PLAN_CHOICES: tuple[str, ...] = ("medoid", "first")


def medoid_index(xyz: FloatArray) -> int:
    """Index of the sample whose path is closest to the others'.

    xyz: (S, T, >=2) waypoints in one frame (m); a sample's distance to another is the mean over waypoints of the
    planar distance between waypoints of equal index (equal time), so two paths along one line at different speeds
    differ too. The medoid minimises the sum of its distances to every other sample. Ties go to the lower index, so
    identical samples keep the first.
    """
    xy = np.asarray(xyz, dtype=np.float64)[:, :, :2]
    if xy.shape[0] <= 1:
        return 0
    pairwise = np.linalg.norm(xy[:, None] - xy[None], axis=-1).mean(axis=-1)
    return int(np.argmin(pairwise.sum(axis=1)))


def plan_spread_m(xyz: FloatArray) -> float:
    """How far the other samples lie from the plan (sample 0): the mean over them of the mean planar distance between
    waypoints of equal index (m). Samples that agree give ~0; a model unsure of the scene draws trajectories that
    part. NaN for a single sample."""
    xy = np.asarray(xyz, dtype=np.float64)[:, :, :2]
    if xy.shape[0] <= 1:
        return float("nan")
    return float(np.linalg.norm(xy[1:] - xy[:1], axis=-1).mean())


def choose_plan(prediction: Prediction, choice: str) -> Prediction:
    """``prediction`` with the plan sample first, by ``choice`` (one of PLAN_CHOICES); unchanged for one sample or
    ``first``. Every per-sample field moves together."""
    if choice not in PLAN_CHOICES:
        raise ValueError(f"plan choice {choice!r} is not one of {', '.join(PLAN_CHOICES)}")
    if choice == "first" or prediction.num_samples <= 1:
        return prediction
    chosen = medoid_index(prediction.xyz)
    if chosen == 0:
        return prediction
    order = [chosen, *(i for i in range(prediction.num_samples) if i != chosen)]
    logprobs = prediction.token_logprobs
    return dataclasses.replace(
        prediction,
        xyz=prediction.xyz[order],
        rotation=prediction.rotation[order],
        reasoning=tuple(prediction.reasoning[i] for i in order),
        num_generated_tokens=tuple(prediction.num_generated_tokens[i] for i in order),
        truncated=tuple(prediction.truncated[i] for i in order),
        token_logprobs=None if logprobs is None else tuple(logprobs[i] for i in order),
    )
