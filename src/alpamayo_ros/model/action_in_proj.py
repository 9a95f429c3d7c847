"""Per-waypoint action input projection (official ``PerWaypointActionInProjV2`` layout and state-dict names).

Each of the 64 waypoints becomes one expert token: ``[F(accel), F(curvature), F(t)]`` with
``F(u) = sqrt(2) * [sin(2 pi f_k u), cos(2 pi f_k u)]`` over ``f_k = logspace(0, log10(max_freq), N/2)`` (stored as
``freqs`` buffers in the checkpoint), through an MLP with RMSNorms (computed in float32) and a final LayerNorm.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from alpamayo_ros.model.config import ActionInProjConfig


class FourierEncoder(nn.Module):
    """u (...) -> (..., N) Fourier features; ``freqs`` (1, N/2) is a persistent buffer as in the checkpoint."""

    freqs: torch.Tensor

    def __init__(self, num_features: int, max_freq: float) -> None:
        super().__init__()
        if num_features % 2:
            raise ValueError(f"num_fourier_feats must be even, got {num_features}")
        freqs = torch.logspace(0.0, math.log10(max_freq), num_features // 2, dtype=torch.float32)
        self.register_buffer("freqs", freqs[None, :])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        # (u * f) * 2 * pi, in this order: at |angle| ~ 400 a float32 ulp is 3e-5, so the order is part of parity
        angle = u.to(torch.float32)[..., None] * self.freqs.to(torch.float32)[0] * 2 * math.pi
        return math.sqrt(2.0) * torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class Float32RMSNorm(nn.Module):
    """RMSNorm computed in float32 (eps 1e-5), result cast back to the input dtype before the weight."""

    def __init__(self, size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class _Encoder(nn.Module):
    """Holds ``trunk`` so the state-dict keys read ``encoder.trunk.{i}``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden), nn.SiLU()]
        for _ in range(num_layers - 1):
            layers += [Float32RMSNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU()]
        layers += [Float32RMSNorm(hidden), nn.Linear(hidden, out_dim)]
        self.trunk = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.trunk(x)
        return out


class PerWaypointActionInProj(nn.Module):
    """(B, 64, 2) noisy normalised actions + flow time (B, 1, 1) -> (B, 64, expert_hidden) token embeddings."""

    def __init__(self, cfg: ActionInProjConfig, action_dims: int, out_dim: int) -> None:
        super().__init__()
        n = cfg.num_fourier_feats
        self.sinus = nn.ModuleList([FourierEncoder(n, cfg.max_freq) for _ in range(action_dims)])
        self.timestep_fourier_encoder = FourierEncoder(n, cfg.max_freq)
        self.encoder = _Encoder((action_dims + 1) * n, cfg.hidden_size, out_dim, cfg.num_enc_layers)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        t = t.to(torch.float32).reshape(x.shape[0], -1)[:, -1]  # one flow time per row
        feats = [enc(x[..., i]) for i, enc in enumerate(self.sinus)]
        feats.append(self.timestep_fourier_encoder(t)[:, None, :].expand(-1, x.shape[1], -1))
        h = torch.cat(feats, dim=-1).to(self.norm.weight.dtype)
        out: torch.Tensor = self.norm(self.encoder(h))
        return out
