"""reasoning_uncertainty: 1 - geometric mean of the reasoning tokens' probabilities."""

from __future__ import annotations

import math

import numpy as np

from alpamayo_ros.core.types import Prediction
from alpamayo_ros.core.uncertainty import reasoning_uncertainty, sample_uncertainty


def test_sure_tokens_give_zero_and_doubt_raises_it() -> None:
    assert reasoning_uncertainty(np.zeros(12)) == 0.0
    half = reasoning_uncertainty(np.log(np.full(4, 0.5)))
    assert math.isclose(half, 0.5)
    one_doubt = reasoning_uncertainty(np.log(np.array([1.0, 1.0, 1.0, 0.2])))
    assert 0.0 < one_doubt < half  # one unsure word among sure ones counts, but less than doubt everywhere
    assert math.isclose(one_doubt, 1.0 - 0.2**0.25)


def test_no_token_probabilities_is_nan_not_zero() -> None:
    assert math.isnan(reasoning_uncertainty(None)) and math.isnan(reasoning_uncertainty(np.zeros(0)))
    pred = Prediction(np.zeros((2, 64, 3)), np.zeros((2, 64, 3, 3)), ("a", "b"), (1, 1), (False, False))
    assert math.isnan(sample_uncertainty(pred, 1))
    pred = Prediction(
        np.zeros((2, 64, 3)),
        np.zeros((2, 64, 3, 3)),
        ("a", "b"),
        (1, 1),
        (False, False),
        token_logprobs=(np.zeros(3), np.log(np.full(3, 0.25))),
    )
    assert sample_uncertainty(pred, 0) == 0.0 and math.isclose(sample_uncertainty(pred, 1), 0.75)
