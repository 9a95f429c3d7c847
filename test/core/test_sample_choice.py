"""Which sample becomes the plan: the medoid of the trajectory samples, every per-sample field moved with it."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.rig import FUTURE_STEPS
from alpamayo_ros.core.sample_choice import PLAN_CHOICES, choose_plan, medoid_index, plan_spread_m
from alpamayo_ros.core.types import Prediction

from plan_samples import fan, prediction


def with_logprobs(pred: Prediction) -> Prediction:
    n = pred.num_samples
    return Prediction(
        pred.xyz,
        pred.rotation,
        pred.reasoning,
        tuple(range(10, 10 + n)),
        tuple(i % 2 == 1 for i in range(n)),
        token_logprobs=tuple(np.full(3, -0.1 * (i + 1)) for i in range(n)),
    )


def test_the_medoid_is_the_sample_between_the_others() -> None:
    assert medoid_index(fan([6.0, 0.0, 2.0])) == 2  # summed distances 10, 8, 6 (in units of the parabola)
    assert medoid_index(fan([-3.0, 8.0, 1.0, 0.5, 0.0])) == 3  # the median offset: an outlier does not pull it


def test_speed_counts_as_well_as_the_path() -> None:
    """Paths along one line at different speeds differ: the middle speed is the consensus."""
    xyz = np.concatenate([fan([0.0], speed_mps=s) for s in (4.0, 14.0, 9.0)])
    assert medoid_index(xyz) == 2


def test_ties_and_single_samples_keep_the_first() -> None:
    assert medoid_index(fan([1.0, 1.0, 1.0])) == 0
    assert medoid_index(fan([5.0])) == 0
    assert medoid_index(fan([0.0, 4.0])) == 0  # two samples are equally central


def test_medoid_moves_every_per_sample_field_together() -> None:
    texts = ("left", "straight", "slight left", "right", "more left")
    pred = with_logprobs(prediction(fan([6.0, 0.0, 2.0, -1.0, 3.0]), texts))
    chosen = choose_plan(pred, "medoid")
    assert chosen.reasoning == ("slight left", "left", "straight", "right", "more left")
    assert np.array_equal(chosen.xyz, pred.xyz[[2, 0, 1, 3, 4]])
    assert np.array_equal(chosen.rotation, pred.rotation[[2, 0, 1, 3, 4]])
    assert chosen.num_generated_tokens == (12, 10, 11, 13, 14)
    assert chosen.truncated == (False, False, True, True, False)
    assert chosen.token_logprobs is not None
    assert [float(lp[0]) for lp in chosen.token_logprobs] == pytest.approx([-0.3, -0.1, -0.2, -0.4, -0.5])
    assert chosen.timings is pred.timings


def test_first_one_sample_and_a_central_first_sample_are_left_alone() -> None:
    pred = prediction(fan([6.0, 0.0, 2.0]))
    assert choose_plan(pred, "first") is pred
    single = prediction(fan([3.0]))
    assert choose_plan(single, "medoid") is single
    central = prediction(fan([2.0, 6.0, 0.0]))
    assert choose_plan(central, "medoid") is central


def test_an_unknown_choice_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"plan choice 'mean' is not one of medoid, first"):
        choose_plan(prediction(fan([0.0, 1.0])), "mean")
    assert PLAN_CHOICES == ("medoid", "first")


def test_spread_is_the_mean_distance_of_the_other_samples_from_the_plan() -> None:
    """Offsets grow along the parabola, whose mean over the 64 waypoints is known in closed form."""
    shape_mean = float(np.mean(((np.arange(FUTURE_STEPS) + 1) / FUTURE_STEPS) ** 2))
    assert plan_spread_m(fan([0.0, 2.0, -4.0])) == pytest.approx(3.0 * shape_mean)
    assert plan_spread_m(fan([1.0, 1.0, 1.0])) == 0.0
    assert np.isnan(plan_spread_m(fan([1.0])))
