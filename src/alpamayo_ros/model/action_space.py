"""Unicycle acceleration/curvature action space: 64 x (accel, curvature) at dt 0.1 s <-> waypoints.

``action_to_traj`` (inference): de-normalise, estimate the t0 speed v0 by a regularised least-squares fit over all 16
history poses, integrate speed and heading (heading 0 at the origin), trapezoidal x/y, z = last history z, yaw-only
rotations. ``traj_to_action`` (data/tests): the inverse via smoothed least squares (Cholesky solves). Output frame:
the t0 ego frame. Math runs in the input dtype; the inference path upcasts to float32 (bf16 integration would lose
centimetres over 6.4 s), a deliberate deviation from the official bf16 path.
"""

from __future__ import annotations

import torch
from torch import nn

from alpamayo_ros.model.config import ActionSpaceConfig

LOW_SPEED_CURVATURE_THRESHOLD_MPS = 0.6  # below this, curvature from positions is noise: set to 0 (traj_to_action)


def yaw_of(rot: torch.Tensor) -> torch.Tensor:
    return torch.atan2(rot[..., 1, 0], rot[..., 0, 0])


def unwrap(angle: torch.Tensor) -> torch.Tensor:
    """Unwrap along the last dim so consecutive differences lie in (-pi, pi]."""
    d = torch.diff(angle, dim=-1)
    d = torch.atan2(torch.sin(d), torch.cos(d))
    return torch.cat([angle[..., :1], angle[..., :1] + torch.cumsum(d, dim=-1)], dim=-1)


def yaw_rotation(yaw: torch.Tensor) -> torch.Tensor:
    """Yaw angles (...) -> rotation matrices (..., 3, 3) about z."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    rows = [torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1), torch.stack([zero, zero, one], -1)]
    return torch.stack(rows, dim=-2)


def _difference_gram(n: int, order: int, lead: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """D^T D for the order-th finite-difference operator on n samples (coefficients of (x_{i+1} - x_i)^order)."""
    coeffs = {1: [-1.0, 1.0], 2: [-1.0, 2.0, -1.0], 3: [-1.0, 3.0, -3.0, 1.0]}[order]
    rows = max(n - order, 0)
    d = torch.zeros(rows, n, dtype=like.dtype, device=like.device)
    idx = torch.arange(rows, device=like.device)
    for k, c in enumerate(coeffs):
        d[idx, idx + k] = c
    return (d.T @ d).expand(*lead, n, n)


def _smoothing(n: int, order: int, lam: float, dt: float, *, lead: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return (lam / dt ** (2 * order)) * _difference_gram(n, order, lead, like)


def _eye(n: int, lead: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device).expand(*lead, n, n)


def _solve_spd(lhs: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    chol = torch.linalg.cholesky(lhs)
    return torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)


def _speed_design(dxy: torch.Tensor, theta: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Trapezoid model dxy_k = dt/2 (v_k u_k + v_{k+1} u_{k+1}), u = (cos, sin) heading: A (.., 2N, N+1), b (.., 2N)."""
    *lead, n, _ = dxy.shape
    a = torch.zeros(*lead, 2 * n, n + 1, dtype=dxy.dtype, device=dxy.device)
    k = torch.arange(n, device=dxy.device)
    cos, sin = torch.cos(theta), torch.sin(theta)
    a[..., 2 * k, k] = cos[..., :-1]
    a[..., 2 * k, k + 1] = cos[..., 1:]
    a[..., 2 * k + 1, k] = sin[..., :-1]
    a[..., 2 * k + 1, k + 1] = sin[..., 1:]
    b = (2.0 / dt * dxy).flatten(-2)
    return a, b


class UnicycleAccelCurvatureActionSpace(nn.Module):
    """Buffers ``accel_{mean,std}``, ``curvature_{mean,std}`` as in the official state dict."""

    accel_mean: torch.Tensor
    accel_std: torch.Tensor
    curvature_mean: torch.Tensor
    curvature_std: torch.Tensor

    def __init__(self, cfg: ActionSpaceConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("accel_mean", torch.tensor(cfg.accel_mean))
        self.register_buffer("accel_std", torch.tensor(cfg.accel_std))
        self.register_buffer("curvature_mean", torch.tensor(cfg.curvature_mean))
        self.register_buffer("curvature_std", torch.tensor(cfg.curvature_std))

    @property
    def dims(self) -> tuple[int, int]:
        return (self.cfg.n_waypoints, 2)

    def estimate_t0_speed(self, hist_xyz: torch.Tensor, hist_rot: torch.Tensor) -> torch.Tensor:
        """Speed at t0 (...,) from (..., 16, 3) / (..., 16, 3, 3): regularised LSQ of all history speeds."""
        dt = self.cfg.dt
        dxy = hist_xyz[..., 1:, :2] - hist_xyz[..., :-1, :2]
        theta = unwrap(yaw_of(hist_rot))
        a, b = _speed_design(dxy, theta, dt)
        lead = tuple(dxy.shape[:-2])
        n1 = dxy.shape[-2] + 1
        lhs = a.transpose(-1, -2) @ a + _smoothing(n1, 3, self.cfg.v_lambda, dt, lead=lead, like=a)
        lhs = lhs + self.cfg.v_ridge * _eye(n1, lead, a)
        rhs = (a.transpose(-1, -2) @ b.unsqueeze(-1)).squeeze(-1)
        return _solve_spd(lhs, rhs)[..., -1]

    def action_to_traj(
        self, action: torch.Tensor, hist_xyz: torch.Tensor, hist_rot: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (..., 64, 2) actions + history -> xyz (..., 64, 3), rotation (..., 64, 3, 3) in the t0 frame."""
        dtype = action.dtype
        accel = action[..., 0] * self.accel_std.to(dtype) + self.accel_mean.to(dtype)
        kappa = action[..., 1] * self.curvature_std.to(dtype) + self.curvature_mean.to(dtype)
        v0 = self.estimate_t0_speed(hist_xyz.to(dtype), hist_rot.to(dtype)).unsqueeze(-1)
        dt = self.cfg.dt
        speed = torch.cat([v0, v0 + torch.cumsum(accel * dt, dim=-1)], dim=-1)  # (..., N+1)
        heading_steps = torch.cumsum(kappa * speed[..., :-1] * dt, dim=-1) + torch.cumsum(
            kappa * accel * (0.5 * dt**2), dim=-1
        )
        theta = torch.cat([torch.zeros_like(v0), heading_steps], dim=-1)
        half = 0.5 * dt
        x = torch.cumsum(speed[..., :-1] * torch.cos(theta[..., :-1]) * half, dim=-1) + torch.cumsum(
            speed[..., 1:] * torch.cos(theta[..., 1:]) * half, dim=-1
        )
        y = torch.cumsum(speed[..., :-1] * torch.sin(theta[..., :-1]) * half, dim=-1) + torch.cumsum(
            speed[..., 1:] * torch.sin(theta[..., 1:]) * half, dim=-1
        )
        z = hist_xyz[..., -1:, 2].to(dtype).expand_as(x)
        xyz = torch.stack([x, y, z], dim=-1)
        return xyz, yaw_rotation(theta[..., 1:])

    def traj_to_action(
        self, hist_xyz: torch.Tensor, hist_rot: torch.Tensor, fut_xyz: torch.Tensor, fut_rot: torch.Tensor
    ) -> torch.Tensor:
        """Future poses (..., 64, 3) / (..., 64, 3, 3) -> normalised actions (..., 64, 2) (smoothed LSQ inverse)."""
        cfg = self.cfg
        dt = cfg.dt
        if fut_xyz.shape[-2] != cfg.n_waypoints:
            raise ValueError(f"future trajectory must have {cfg.n_waypoints} poses, got {fut_xyz.shape[-2]}")
        v0 = self.estimate_t0_speed(hist_xyz, hist_rot)
        full_xy = torch.cat([hist_xyz[..., -1:, :], fut_xyz], dim=-2)[..., :2]
        dxy = full_xy[..., 1:, :] - full_xy[..., :-1, :]
        lead = tuple(dxy.shape[:-2])
        n = dxy.shape[-2]
        # heading: smooth the unwrapped future yaw with theta_0 = 0 fixed
        target = unwrap(yaw_of(fut_rot))
        gram = _smoothing(n + 1, 3, cfg.theta_lambda, dt, lead=lead, like=target)
        lhs = _eye(n, lead, target) + gram[..., 1:, 1:] + cfg.theta_ridge * _eye(n, lead, target)
        theta = torch.cat([torch.zeros_like(target[..., :1]), _solve_spd(lhs, target)], dim=-1)  # theta_0 = 0
        # speeds with v_0 fixed
        a, b = _speed_design(dxy, theta, dt)
        ata = a.transpose(-1, -2) @ a
        rhs = (a[..., :, 1:].transpose(-1, -2) @ b.unsqueeze(-1)).squeeze(-1) - ata[..., 1:, 0] * v0.unsqueeze(-1)
        gram = _smoothing(n + 1, 3, cfg.v_lambda, dt, lead=lead, like=a)
        rhs = rhs - gram[..., 1:, 0] * v0.unsqueeze(-1)
        lhs = ata[..., 1:, 1:] + gram[..., 1:, 1:] + cfg.v_ridge * _eye(n, lead, a)
        speed = torch.cat([v0.unsqueeze(-1), _solve_spd(lhs, rhs)], dim=-1)
        # acceleration: dv/dt with 2nd-order smoothing
        dv = (speed[..., 1:] - speed[..., :-1]) / dt
        lhs = (
            _eye(n, lead, dv) + _smoothing(n, 2, cfg.a_lambda, dt, lead=lead, like=dv) + cfg.a_ridge * _eye(n, lead, dv)
        )
        accel = _solve_spd(lhs, dv)
        # curvature: dtheta = kappa * arc length, 2nd-order smoothing
        arc = dt * speed[..., :-1] + (dt**2) / 2.0 * accel
        dtheta = theta[..., 1:] - theta[..., :-1]
        lhs = torch.diag_embed(arc * arc) + _smoothing(n, 2, cfg.kappa_lambda, dt, lead=lead, like=arc)
        lhs = lhs + cfg.kappa_ridge * _eye(n, lead, arc)
        kappa = _solve_spd(lhs, arc * dtheta)
        kappa = kappa.clamp(cfg.curvature_bounds[0], cfg.curvature_bounds[1])
        slow = (speed[..., :-1].abs() < LOW_SPEED_CURVATURE_THRESHOLD_MPS) | (
            speed[..., 1:].abs() < LOW_SPEED_CURVATURE_THRESHOLD_MPS
        )
        kappa = torch.where(slow, torch.zeros_like(kappa), kappa)
        accel_n = (accel - self.accel_mean.to(accel.dtype)) / self.accel_std.to(accel.dtype)
        kappa_n = (kappa - self.curvature_mean.to(kappa.dtype)) / self.curvature_std.to(kappa.dtype)
        return torch.stack([accel_n, kappa_n], dim=-1)
