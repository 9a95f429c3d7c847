"""The node's output sanity gate (pure function inside the node module)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from alpamayo_ros.core.types import Prediction
from alpamayo_ros.nodes.alpamayo_node import check_prediction


def prediction(xyz: np.ndarray, reasoning: tuple[str, ...] = ("Keep lane.",)) -> Prediction:
    rot = np.broadcast_to(np.eye(3), (*xyz.shape[:2], 3, 3)).copy()
    n = xyz.shape[0]
    return Prediction(xyz, rot, reasoning, (1,) * n, (False,) * n)


def test_good_prediction_passes() -> None:
    assert check_prediction(prediction(np.zeros((1, 64, 3)))) is None


@pytest.mark.parametrize(
    ("pred", "reason"),
    [
        (prediction(np.full((1, 64, 3), np.nan)), "NaN/Inf"),
        (prediction(np.full((1, 64, 3), np.inf)), "NaN/Inf"),
        (prediction(np.zeros((1, 32, 3))), "expected (S, 64, 3)"),
        (prediction(np.zeros((0, 64, 3)), ()), "no samples"),
        (prediction(np.zeros((2, 64, 3)), ("a",)), "1 reasoning texts for 2 samples"),
    ],
)
def test_bad_predictions_are_refused_with_a_reason(pred: Prediction, reason: str) -> None:
    verdict = check_prediction(pred)
    assert verdict is not None and reason in verdict
