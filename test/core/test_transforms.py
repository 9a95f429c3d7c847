"""Quaternion/matrix helpers (numpy only) against known rotations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpamayo_ros.core.transforms import (
    TransformError,
    matrix_to_quat,
    normalize_quat,
    quat_to_matrix,
    rpy_to_matrix,
    slerp,
    to_local,
    to_parent,
    yaw_matrix,
    yaw_of,
)


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def test_quat_matrix_round_trip() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = normalize_quat(rng.normal(size=4))
        q = q if q[3] >= 0 else -q
        r = quat_to_matrix(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(matrix_to_quat(r), q, atol=1e-9)


def test_yaw_quaternion_matches_yaw_matrix() -> None:
    np.testing.assert_allclose(quat_to_matrix(yaw_quat(0.7)), yaw_matrix(0.7), atol=1e-12)
    assert yaw_of(yaw_matrix(-2.0)) == pytest.approx(-2.0)


def test_rpy_convention() -> None:
    # pitch down by 90 deg: body x (forward) points to -z of the parent
    r = rpy_to_matrix(0.0, math.pi / 2, 0.0)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(rpy_to_matrix(0, 0, 0.3), yaw_matrix(0.3), atol=1e-12)


def test_slerp_midpoint_and_short_arc() -> None:
    q = slerp(yaw_quat(0.0), yaw_quat(1.0), 0.5)
    assert yaw_of(quat_to_matrix(q)) == pytest.approx(0.5)
    # -q is the same rotation: interpolation takes the short way
    q = slerp(yaw_quat(0.1), -yaw_quat(0.3), 0.5)
    assert yaw_of(quat_to_matrix(q)) == pytest.approx(0.2)
    # extrapolation beyond the second sample
    q = slerp(yaw_quat(0.0), yaw_quat(0.2), 1.5)
    assert yaw_of(quat_to_matrix(q)) == pytest.approx(0.3)


def test_bad_quaternion_rejected() -> None:
    with pytest.raises(TransformError, match="zero norm"):
        normalize_quat([0, 0, 0, 0])
    with pytest.raises(TransformError, match="nan"):
        normalize_quat([0, 0, float("nan"), 1])


def test_local_parent_round_trip() -> None:
    position = np.array([10.0, -3.0, 0.5])
    rotation = yaw_matrix(0.8)
    pts = np.array([[11.0, -2.0, 0.5], [10.0, -3.0, 0.5]])
    rots = np.stack([yaw_matrix(1.0), yaw_matrix(0.8)])
    local_p, local_r = to_local(position, rotation, pts, rots)
    np.testing.assert_allclose(local_p[1], 0.0, atol=1e-12)
    assert yaw_of(local_r[0]) == pytest.approx(0.2)
    back_p, back_r = to_parent(position, rotation, local_p, local_r)
    np.testing.assert_allclose(back_p, pts, atol=1e-12)
    np.testing.assert_allclose(back_r, rots, atol=1e-12)
