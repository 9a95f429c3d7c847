"""Metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.tools import metrics


def _straight(speed: float, lateral: float = 0.0) -> np.ndarray:
    t = (np.arange(64) + 1) * 0.1
    return np.stack([speed * t, np.full(64, lateral)], axis=1)


def test_constant_offset_gives_that_error_everywhere() -> None:
    err = metrics.tick_errors(_straight(10.0, 0.5), _straight(10.0))
    for table in (err.ade, err.fde, err.min_ade, err.min_fde):
        assert table == pytest.approx({"0.5s": 0.5, "1s": 0.5, "3s": 0.5, "5s": 0.5, "6.4s": 0.5})


def test_speed_error_grows_linearly() -> None:
    # prediction 1 m/s too fast: error at waypoint i = 0.1 * (i + 1)
    err = metrics.tick_errors(_straight(11.0), _straight(10.0))
    assert err.fde["1s"] == pytest.approx(1.0)
    assert err.fde["6.4s"] == pytest.approx(6.4)
    assert err.ade["0.5s"] == pytest.approx(np.mean([0.1, 0.2, 0.3, 0.4, 0.5]))  # 0.3
    assert err.ade["6.4s"] == pytest.approx(0.1 * 65 / 2)  # mean of 0.1..6.4 = 3.25


def test_min_over_samples_takes_the_best_sample_not_the_first() -> None:
    gt = _straight(10.0)
    samples = np.stack([_straight(10.0, 2.0), _straight(10.0, 0.3), _straight(10.0, -1.0)])
    err = metrics.tick_errors(samples, gt)
    assert err.ade["6.4s"] == pytest.approx(2.0)  # sample 0 is what the node publishes
    assert err.min_ade["6.4s"] == pytest.approx(0.3)
    assert err.min_fde["3s"] == pytest.approx(0.3)


def test_mean_over_ticks() -> None:
    a = metrics.tick_errors(_straight(10.0, 1.0), _straight(10.0))
    b = metrics.tick_errors(_straight(10.0, 3.0), _straight(10.0))
    assert metrics.mean_errors([a, b])["ade"]["3s"] == pytest.approx(2.0)
    assert metrics.mean_errors([]) == {}


def test_constant_velocity_baseline_extrapolates_the_history() -> None:
    hist = np.zeros((16, 3))
    hist[:, 0] = (np.arange(16) - 15) * 0.8  # 8 m/s straight, last pose at the origin
    hist[:, 1] = (np.arange(16) - 15) * 0.1  # drifting left at 1 m/s
    cv = metrics.constant_velocity(hist)
    assert cv.shape == (64, 2)
    assert cv[0] == pytest.approx([0.8, 0.1])
    assert cv[-1] == pytest.approx([51.2, 6.4])


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="do not match"):
        metrics.tick_errors(np.zeros((32, 2)), np.zeros((64, 2)))
    assert metrics.rate([]) is None and metrics.rate([True, False, True, True]) == 0.75


def test_auroc_ranks_positives_above_negatives_and_needs_both_classes() -> None:
    assert metrics.auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert metrics.auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert metrics.auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5  # ties count half
    assert metrics.auroc([0.3, 0.6, 0.4, 0.9], [False, True, True, False]) == 0.5
    assert metrics.auroc([0.1, 0.2], [True, True]) is None and metrics.auroc([0.1], [False]) is None
