"""The static shapes of a deployment and the per-deployment host-side inputs of the exported graphs.

Everything shape- or position-dependent is computed on the host once per deployment (vision) or once per inference
(expert) and fed to the graphs as plain tensors, by the same functions the fast PyTorch path uses
(``model.fast.vision.vision_tables``, ``model.fast.static_cache.rope_tables``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.fast.static_cache import signed_sin
from alpamayo_ros.model.fast.vision import vision_tables


@dataclass(frozen=True)
class Deployment:
    """The static shapes every exported graph (and engine) is specialised for."""

    num_images: int  # 16 for Alpamayo-R1 (4 cameras x 4 frames)
    image_grid_thw: tuple[int, int, int]  # per image, in patches, e.g. (1, 20, 36) for 320x576
    prefix_capacity: int  # >= prompt tokens + reasoning budget (the expert's static KV prefix)
    num_samples: int = 1  # rows of the expert step (batch 1 input x samples)

    @property
    def patches_per_image(self) -> int:
        t, h, w = self.image_grid_thw
        return t * h * w

    @property
    def num_patches(self) -> int:
        return self.num_images * self.patches_per_image

    def grid_tensor(self) -> torch.Tensor:
        return torch.tensor([list(self.image_grid_thw)] * self.num_images, dtype=torch.int64)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "image_grid_thw": list(self.image_grid_thw)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Deployment:
        t, h, w = (int(v) for v in data["image_grid_thw"])
        return Deployment(
            num_images=int(data["num_images"]),
            image_grid_thw=(t, h, w),
            prefix_capacity=int(data["prefix_capacity"]),
            num_samples=int(data["num_samples"]),
        )


def vision_aux_inputs(model: AlpamayoR1, deployment: Deployment) -> dict[str, torch.Tensor]:
    """Host-side, once per deployment: ``pos_embeds`` (patches, hidden) float32, the interpolated learned position
    embeddings; ``rope_cos`` / ``rope_sin`` (patches, head_dim) float32, the rotary tables (sin signed for the roll
    form of ``static_cache.apply_rope``)."""
    pos_embeds, cos, sin = vision_tables(model, deployment.grid_tensor())
    return {
        "pos_embeds": pos_embeds.float().contiguous(),
        "rope_cos": cos.contiguous(),
        "rope_sin": sin.contiguous(),
    }


def expert_rope(model: AlpamayoR1, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, rows, n) mRoPE positions -> float32 cos / signed sin (rows, n, head_dim), by the expert's rotary module."""
    like = torch.empty(0, dtype=torch.float32, device=position_ids.device)
    cos, sin = model.expert.rotary_emb(like, position_ids)
    return cos.float(), signed_sin(sin.float())


def prefix_buffers(
    keys: Sequence[torch.Tensor],
    values: Sequence[torch.Tensor],
    hidden_columns: torch.Tensor,
    capacity: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-layer cache tensors (rows, kv, L, d) -> stacked static buffers (layers, rows, kv, capacity, d) + mask.

    ``hidden_columns`` (rows, L) bool marks cache columns the action tokens must not see; columns L..capacity are
    padding and hidden too. The mask is bool, True = visible (``static_cache.grouped_attention``'s convention).
    """
    length = int(keys[0].shape[2])
    if length > capacity:
        raise ValueError(f"KV prefix of {length} tokens exceeds the exported capacity {capacity}")
    rows, kv, _, d = keys[0].shape
    k_buf = torch.zeros(len(keys), rows, kv, capacity, d, dtype=dtype, device=keys[0].device)
    v_buf = torch.zeros_like(k_buf)
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        k_buf[i, :, :, :length] = k
        v_buf[i, :, :, :length] = v
    visible = torch.zeros(rows, capacity, dtype=torch.bool, device=keys[0].device)
    visible[:, :length] = ~hidden_columns.to(visible.device)
    return k_buf, v_buf, visible
