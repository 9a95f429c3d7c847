"""Overlay drawing (shared with the evaluation report): projection geometry and the drawn image."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.overlay import PinholeCamera, draw_overlay, project

K = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]


def camera(rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> PinholeCamera:
    return PinholeCamera.from_fields(K, 640, 480, (1.5, 0.0, 1.5), rpy)


def test_point_ahead_at_camera_height_projects_to_principal_point() -> None:
    uv, valid = project(camera(), [[11.5, 0.0, 1.5]])
    assert valid[0]
    assert uv[0] == pytest.approx((320.0, 240.0))


def test_ground_points_fall_below_the_horizon_and_left_is_left() -> None:
    uv, valid = project(camera(), [[11.5, 0.0, 0.0], [11.5, 2.0, 1.5], [0.0, 0.0, 0.0]])
    assert valid.tolist() == [True, True, False]  # the last point is behind the camera
    assert uv[0, 1] == pytest.approx(240.0 + 500.0 * 1.5 / 10.0)
    assert uv[1, 0] == pytest.approx(320.0 - 500.0 * 2.0 / 10.0)


def test_pitched_camera() -> None:
    # camera pitched down (positive pitch about y tilts x towards -z): the horizon moves up in the image
    uv, _ = project(camera((0.0, 0.1, 0.0)), [[1000.0, 0.0, 1.5]])
    assert uv[0, 1] < 240.0 - 40.0


def test_invalid_intrinsics_rejected() -> None:
    with pytest.raises(ValueError, match="not a valid pinhole"):
        PinholeCamera.from_fields([0.0] * 9, 640, 480, (0, 0, 0), (0, 0, 0))


def test_draw_overlay_downscales_and_draws() -> None:
    rgb = np.full((960, 1280, 3), 100, np.uint8)
    xyz = np.stack([np.linspace(2, 40, 64), np.zeros(64), np.zeros(64)], axis=1)
    cam = PinholeCamera.from_fields([1000.0, 0, 640, 0, 1000.0, 480, 0, 0, 1], 1280, 960, (1.5, 0, 1.5), (0, 0, 0))
    out = draw_overlay(rgb, cam, xyz, "Keep the current speed and stay in the lane.", agreement=1, max_width_px=640)
    assert out.shape == (480, 640, 3)
    assert rgb.max() == 100, "input untouched"
    # the plan (green) is drawn on the lower half, the text band darkens the top
    lower = out[300:, 300:340]
    assert (lower[..., 1] > 150).any()
    assert out[2, 600].max() < 100
    text_only = draw_overlay(rgb, None, xyz, "no intrinsics", max_width_px=2000)
    assert text_only.shape == rgb.shape
