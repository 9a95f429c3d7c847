"""Pinhole models of the seven-camera rig, with approximate mounting poses on a mid-size sedan.

Ego frame: x forward, y left, z up, origin on the ground below the rear-axle centre (metres). Camera optical
frame: x right, y down, z forward (the ROS ``*_optical`` convention, what CameraInfo's K refers to).

The fields of view are the rig's (names end in ``<fov>fov``); the mounting poses below are OUR approximation of
where such cameras sit on a car (the real calibration is not public), good enough for a plausible view from each
camera. Lenses are ideal pinholes without distortion, intrinsics from FOV and resolution: fx = fy = (W/2)/tan(hfov/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from alpamayo_ros.core.overlay import PinholeCamera
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.types import FloatArray


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits on the ego and where it looks. Yaw: + to the left of forward; pitch: + looks down."""

    name: str
    hfov_deg: float
    x_m: float
    y_m: float
    z_m: float
    yaw_deg: float
    pitch_deg: float


# Approximate mounting poses (ego frame, rear-axle origin; sedan ~4.8 m long, front bumper at x ~3.8 m).
RIG_MOUNTS: dict[str, CameraMount] = {
    m.name: m
    for m in (
        CameraMount("camera_cross_left_120fov", 120.0, 2.9, 0.85, 1.05, 60.0, 5.0),  # front-left corner, looks left-fwd
        CameraMount("camera_front_wide_120fov", 120.0, 1.75, 0.0, 1.45, 0.0, 3.0),  # behind the windscreen
        CameraMount("camera_cross_right_120fov", 120.0, 2.9, -0.85, 1.05, -60.0, 5.0),
        CameraMount("camera_rear_left_70fov", 70.0, 1.95, 1.0, 1.1, 145.0, 3.0),  # on the left mirror, looks back
        CameraMount("camera_rear_tele_30fov", 30.0, -0.95, 0.0, 1.5, 180.0, 0.0),  # above the rear plate
        CameraMount("camera_rear_right_70fov", 70.0, 1.95, -1.0, 1.1, -145.0, 3.0),
        CameraMount("camera_front_tele_30fov", 30.0, 1.75, 0.0, 1.45, 0.0, 0.0),  # behind the windscreen
    )
}
assert tuple(RIG_MOUNTS) == CAMERA_NAMES, "rig mounts must follow core.rig's index order"


@dataclass(frozen=True)
class RigCamera:
    """One camera of the rig at a given image size: intrinsics K and extrinsics (ego <- camera optical).

    The same camera model as the node's overlay (``core.overlay.PinholeCamera``, built by ``pinhole()``): the mount's
    yaw and pitch are the body pose's yaw and pitch, roll 0. This class adds what rendering needs (per-pixel rays).
    """

    mount: CameraMount
    width: int
    height: int

    @property
    def name(self) -> str:
        return self.mount.name

    def pinhole(self) -> PinholeCamera:
        """This camera as the overlay's camera model (K row-major, mount position, roll/pitch/yaw of the body)."""
        m = self.mount
        rpy = (0.0, math.radians(m.pitch_deg), math.radians(m.yaw_deg))
        return PinholeCamera.from_fields(self.k.reshape(9), self.width, self.height, self.position, rpy)

    @property
    def fx(self) -> float:
        return (self.width / 2.0) / math.tan(math.radians(self.mount.hfov_deg) / 2.0)

    @property
    def k(self) -> FloatArray:
        """3x3 intrinsic matrix (pixels); principal point at the image centre."""
        f = self.fx
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])

    @property
    def position(self) -> FloatArray:
        """Optical centre in the ego frame (m)."""
        return np.array([self.mount.x_m, self.mount.y_m, self.mount.z_m])

    @property
    def rotation(self) -> FloatArray:
        """R_ego_cam: columns are the optical x (right), y (down), z (forward) axes expressed in the ego frame."""
        yaw = math.radians(self.mount.yaw_deg)
        pitch = math.radians(self.mount.pitch_deg)
        forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(forward, right)
        return np.stack([right, down, forward], axis=1)

    def ego_to_camera(self, points_ego: FloatArray) -> FloatArray:
        """(N, 3) ego-frame points -> (N, 3) optical-frame points (z = depth along the optical axis)."""
        return (np.asarray(points_ego, dtype=np.float64) - self.position) @ self.rotation

    def project(self, points_ego: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(N, 3) ego points -> ((N, 2) pixel coordinates (u right, v down), (N,) depth in m; depth <= 0 is behind)."""
        cam = self.ego_to_camera(points_ego)
        depth = cam[:, 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        f = self.fx
        uv = np.stack([f * cam[:, 0] / safe + self.width / 2.0, f * cam[:, 1] / safe + self.height / 2.0], axis=1)
        return uv, depth

    def pixel_rays(self) -> FloatArray:
        """(H, W, 3) unit ray directions of every pixel centre, in the ego frame."""
        u = (np.arange(self.width, dtype=np.float64) + 0.5 - self.width / 2.0) / self.fx
        v = (np.arange(self.height, dtype=np.float64) + 0.5 - self.height / 2.0) / self.fx
        uu, vv = np.meshgrid(u, v)
        rays_cam = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
        rays = rays_cam @ self.rotation.T
        norm: FloatArray = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
        return norm


def make_rig(width: int = 1920, height: int = 1080) -> tuple[RigCamera, ...]:
    """The seven cameras in core.rig index order, all at one image size."""
    if width < 16 or height < 16:
        raise ValueError(f"image size {width}x{height} is too small (minimum 16x16)")
    return tuple(RigCamera(RIG_MOUNTS[name], width, height) for name in CAMERA_NAMES)
