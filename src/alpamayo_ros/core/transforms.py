"""Rigid-body helpers in numpy (scipy is not installed): quaternions are (x, y, z, w), ROS order.

Frames follow REP 103: x forward, y left, z up. A pose (p, R) maps points of its child frame into its parent frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


class TransformError(ValueError):
    """A pose or rotation that cannot be used (non-finite, zero-norm quaternion)."""


def normalize_quat(q_xyzw: npt.ArrayLike) -> F64:
    """Unit quaternion; raises TransformError on non-finite or near-zero input."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not np.all(np.isfinite(q)) or norm < 1e-9:
        raise TransformError(f"quaternion {q.tolist()} is not finite or has zero norm")
    return q / norm


def quat_to_matrix(q_xyzw: npt.ArrayLike) -> F64:
    """(..., 4) unit quaternions -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty((*q.shape[:-1], 3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - z * w)
    out[..., 0, 2] = 2 * (x * z + y * w)
    out[..., 1, 0] = 2 * (x * y + z * w)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - x * w)
    out[..., 2, 0] = 2 * (x * z - y * w)
    out[..., 2, 1] = 2 * (y * z + x * w)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def matrix_to_quat(rot: npt.ArrayLike) -> F64:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (x, y, z, w) with w >= 0."""
    m = np.asarray(rot, dtype=np.float64)
    flat = m.reshape(-1, 3, 3)
    out = np.empty((flat.shape[0], 4))
    for i, r in enumerate(flat):
        tr = r[0, 0] + r[1, 1] + r[2, 2]
        if tr > 0:
            s = np.sqrt(tr + 1.0) * 2
            out[i] = ((r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s)
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
            out[i] = (0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s)
        elif r[1, 1] > r[2, 2]:
            s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
            out[i] = ((r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s)
        else:
            s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
            out[i] = ((r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s, (r[1, 0] - r[0, 1]) / s)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    out[out[:, 3] < 0] *= -1
    return out.reshape((*m.shape[:-2], 4))


def slerp(q0_xyzw: npt.ArrayLike, q1_xyzw: npt.ArrayLike, u: float) -> F64:
    """Spherical interpolation along the shorter arc; u in [0, 1] interpolates, u > 1 extrapolates."""
    q0 = normalize_quat(q0_xyzw)
    q1 = normalize_quat(q1_xyzw)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation: take the short way round
        q1, dot = -q1, -dot
    dot = min(dot, 1.0)
    theta = np.arccos(dot)
    if theta < 1e-6:
        return normalize_quat(q0 + u * (q1 - q0))
    sin_theta = np.sin(theta)
    return normalize_quat((np.sin((1 - u) * theta) * q0 + np.sin(u * theta) * q1) / sin_theta)


def yaw_of(rot: npt.ArrayLike) -> float:
    """Heading (rad, CCW from +x) of a rotation matrix's x axis projected on the xy plane."""
    r = np.asarray(rot, dtype=np.float64)
    return float(np.arctan2(r[1, 0], r[0, 0]))


def yaw_matrix(yaw_rad: float) -> F64:
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_to_matrix(roll_rad: float, pitch_rad: float, yaw_rad: float) -> F64:
    """R = Rz(yaw) Ry(pitch) Rx(roll), the ROS/URDF fixed-axis convention."""
    cr, sr = np.cos(roll_rad), np.sin(roll_rad)
    cp, sp = np.cos(pitch_rad), np.sin(pitch_rad)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    out: F64 = yaw_matrix(yaw_rad) @ ry @ rx
    return out


def to_local(position: F64, rotation: F64, xyz: npt.ArrayLike, rot: npt.ArrayLike) -> tuple[F64, F64]:
    """Express parent-frame poses (xyz (N,3), rot (N,3,3)) in the frame of the pose (position, rotation)."""
    p = np.asarray(xyz, dtype=np.float64)
    r = np.asarray(rot, dtype=np.float64)
    rt = rotation.T
    return (p - position) @ rt.T, np.einsum("ij,njk->nik", rt, r)


def to_parent(position: F64, rotation: F64, xyz: npt.ArrayLike, rot: npt.ArrayLike) -> tuple[F64, F64]:
    """Inverse of to_local: local poses (N,3)/(N,3,3) -> the parent frame of the pose (position, rotation)."""
    p = np.asarray(xyz, dtype=np.float64)
    r = np.asarray(rot, dtype=np.float64)
    return p @ rotation.T + position, np.einsum("ij,njk->nik", rotation, r)
