"""Ego-history tokens: 16 past poses -> 48 history-bin token ids fused into the ``<|traj_history|>`` slots.

Official quirk kept: a zero pose is prepended before taking per-step deltas, so the first xyz triple encodes the
oldest pose's absolute offset from t0 (often clamped at a bin edge), followed by 15 deltas; order (t, x/y/z).
"""

from __future__ import annotations

import torch

from alpamayo_ros.model.config import DeltaTokenizerConfig, DiscreteTokenizerConfig


def encode_history_bins(history_xyz: torch.Tensor, cfg: DeltaTokenizerConfig) -> torch.Tensor:
    """(B, 16, 3) positions in the t0 frame -> (B, 48) bins in [0, num_bins - 1] (0-based, not token ids)."""
    xyz = history_xyz.to(torch.float32)
    padded = torch.cat([torch.zeros_like(xyz[:, :1]), xyz], dim=1)
    deltas = padded[:, 1:] - padded[:, :-1]
    lo = torch.tensor(cfg.xyz_min, dtype=torch.float32, device=xyz.device)
    hi = torch.tensor(cfg.xyz_max, dtype=torch.float32, device=xyz.device)
    bins = torch.round((deltas - lo) / (hi - lo) * (cfg.num_bins - 1)).clamp(0, cfg.num_bins - 1)
    return bins.to(torch.int64).reshape(xyz.shape[0], -1)


def history_token_ids(history_xyz: torch.Tensor, cfg: DeltaTokenizerConfig, hist_token_start_idx: int) -> torch.Tensor:
    """(B, 16, 3) -> (B, 48) absolute token ids (hist_token_start_idx + bin)."""
    return encode_history_bins(history_xyz, cfg) + hist_token_start_idx


def fuse_history(input_ids: torch.Tensor, hist_ids: torch.Tensor, placeholder_id: int) -> torch.Tensor:
    """Write each row's history ids into its placeholder positions, in order.

    Raises:
        ValueError: a row does not have exactly as many placeholders as history ids.
    """
    mask = input_ids == placeholder_id
    counts = mask.sum(dim=1)
    if bool((counts != hist_ids.shape[1]).any()):
        raise ValueError(f"history placeholders per row {counts.tolist()} != {hist_ids.shape[1]} history tokens")
    fused = input_ids.clone()
    fused[mask] = hist_ids.to(input_ids.device, input_ids.dtype).reshape(-1)
    return fused


def encode_future_bins(action: torch.Tensor, cfg: DiscreteTokenizerConfig) -> torch.Tensor:
    """Normalised future actions (B, 64, 2) -> (B, 128) bins, (accel, curvature) interleaved per step.

    The official discrete future tokenizer (training targets; inference never emits these tokens, they are masked).
    """
    lo = torch.tensor(cfg.dims_min, dtype=action.dtype, device=action.device)
    hi = torch.tensor(cfg.dims_max, dtype=action.dtype, device=action.device)
    bins = torch.round((action - lo) / (hi - lo) * (cfg.num_bins - 1)).clamp(0, cfg.num_bins - 1)
    return bins.to(torch.int64).reshape(action.shape[0], -1)
