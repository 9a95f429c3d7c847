"""Plan overlay on a camera image: the trajectory projected with pinhole intrinsics, plus wrapped reasoning text.

Pure numpy/cv2 (no ROS): the node publishes it as ~/output/overlay and the evaluation report draws the same
picture. Frames: waypoints in the ego frame (x forward, y left, z up); the camera mount is the camera *body*
pose in the ego frame (x forward, y left, z up, REP 103); the optical frame (z forward, x right, y down) is
derived from it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from alpamayo_ros.core.param_fields import param
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.transforms import F64, rpy_to_matrix
from alpamayo_ros.core.types import UInt8Array

# optical <- body: x_opt = -y_body, y_opt = -z_body, z_opt = x_body
_OPTICAL_FROM_BODY: F64 = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])

AGREEMENT_COLOURS_RGB: dict[int, tuple[int, int, int]] = {0: (255, 200, 0), 1: (0, 220, 80), 2: (255, 40, 40)}


@dataclass(frozen=True)
class OverlayParams:
    """The node's ``overlay.*`` parameters: which camera the plan is drawn on and where that camera sits."""

    enabled: bool = param(False, "publish ~/output/overlay (front camera + projected plan + reasoning)")
    camera: str = param("camera_front_wide_120fov", "camera the overlay draws on", choices=CAMERA_NAMES)
    camera_info_topic: str = param("~/input/camera_front_wide_120fov/camera_info", "CameraInfo of the overlay camera")
    mount_xyz_m: tuple[float, ...] = param((1.7, 0.0, 1.5), "overlay camera position in base_link (x, y, z)", length=3)
    mount_rpy_rad: tuple[float, ...] = param(
        (0.0, 0.0, 0.0), "overlay camera body orientation in base_link (roll, pitch, yaw; x forward)", length=3
    )
    max_width_px: int = param(960, "overlay images are downscaled to at most this width", min_value=64, max_value=8192)


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics K (3x3) at image size (width, height) and the camera body pose in the ego frame."""

    k: F64
    width: int
    height: int
    mount_xyz_m: F64
    mount_rotation: F64  # ego <- camera body

    @staticmethod
    def from_fields(
        k_row_major: npt.ArrayLike, width: int, height: int, mount_xyz_m: npt.ArrayLike, mount_rpy_rad: npt.ArrayLike
    ) -> PinholeCamera:
        """Build from CameraInfo-like fields (k: 9 values row-major) and a mount (x, y, z), (roll, pitch, yaw)."""
        k = np.asarray(k_row_major, dtype=np.float64).reshape(3, 3)
        if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0):
            raise ValueError(f"camera intrinsics {k.ravel().tolist()} are not a valid pinhole matrix")
        rpy = np.asarray(mount_rpy_rad, dtype=np.float64)
        rot = rpy_to_matrix(float(rpy[0]), float(rpy[1]), float(rpy[2]))
        return PinholeCamera(k, int(width), int(height), np.asarray(mount_xyz_m, dtype=np.float64), rot)


def project(
    camera: PinholeCamera, xyz_ego: npt.ArrayLike, min_depth_m: float = 0.5
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Ego-frame points (N, 3) -> pixel coordinates (N, 2) and a mask of points in front of the camera."""
    pts = np.asarray(xyz_ego, dtype=np.float64).reshape(-1, 3)
    body = (pts - camera.mount_xyz_m) @ camera.mount_rotation  # R^T (p - t), row-wise
    optical = body @ _OPTICAL_FROM_BODY.T
    depth = optical[:, 2]
    valid = depth > min_depth_m
    safe = np.where(valid, depth, 1.0)
    uvw = optical @ camera.k.T
    uv = uvw[:, :2] / safe[:, None]
    return uv, valid


def draw_overlay(
    rgb: UInt8Array,
    camera: PinholeCamera | None,
    xyz_ego: npt.ArrayLike,
    text: str,
    *,
    agreement: int = 0,
    max_width_px: int = 960,
    wrap_chars: int = 60,
) -> UInt8Array:
    """A new (H', W', 3) RGB image: the plan as a polyline on the ground (if intrinsics are known) and the text.

    The image is downscaled to ``max_width_px``; intrinsics are scaled with it, and rescaled when the image size
    differs from the CameraInfo size.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, max_width_px / width)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    src = np.ascontiguousarray(rgb)
    canvas: UInt8Array = cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_AREA) if scale < 1.0 else src.copy()
    colour = AGREEMENT_COLOURS_RGB.get(int(agreement), AGREEMENT_COLOURS_RGB[0])
    if camera is not None:
        sx, sy = out_w / camera.width, out_h / camera.height
        uv, valid = project(camera, xyz_ego)
        pts = np.stack([uv[:, 0] * sx, uv[:, 1] * sy], axis=1)
        inside = valid & np.all(np.abs(pts) < 1e5, axis=1)
        poly = np.round(pts[inside]).astype(np.int32)
        if len(poly) >= 2:
            cv2.polylines(canvas, [poly.reshape(-1, 1, 2)], False, colour, max(2, out_w // 320), cv2.LINE_AA)
        for p in poly[9::10]:
            cv2.circle(canvas, (int(p[0]), int(p[1])), max(2, out_w // 240), colour, -1, cv2.LINE_AA)
    font_scale = max(0.35, out_w / 1600)
    line_h = int(22 * font_scale / 0.6)
    lines = textwrap.wrap(text, wrap_chars)[:8] or [""]
    box_h = line_h * len(lines) + 8
    band = canvas[:box_h]
    band[:] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(canvas, line, (6, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, 1, cv2.LINE_AA)
    return canvas
