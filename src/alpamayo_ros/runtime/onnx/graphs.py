"""The two exported graphs as modules with explicit tensor inputs: the vision tower and one action-expert step.

Why explicit-tensor modules instead of exporting the transformers modules: the Qwen3-VL vision tower computes its
rotary table, position-embedding interpolation and per-image attention split on the host (``.tolist()``, ``arange``
over traced values, int32/int64 ``cu_seqlens``), and the expert reads a ``DynamicCache`` object and crops it after
each step. Neither traces into a static graph. Both graphs run the fast PyTorch path's own code
(``model.fast.vision.vision_forward``, ``model.fast.static_cache.decoder_layer``) over the model's weights, with
everything shape- or position-dependent as plain inputs (``deployment``):

* vision: ``(pixel_values, pos_embeds, rotary cos/sin) -> (image_embeds, deepstack..)``. All images of a deployment
  have the same size, so attention is one batched (images, heads, patches, patches) product with no mask.
* expert step: ``(x_t, t, prefix K/V [layers, rows, kv_heads, capacity, head_dim], bool prefix visibility
  [rows, capacity], action-token rotary cos/sin) -> velocity``. The prefix is a static-capacity buffer; columns past
  the valid length (and the reasoning tokens after ``<|traj_future_start|>``) are hidden, exactly like the torch
  path's mask. The 10 Euler steps stay outside the graph: the same engine runs every step.

Attention is written as matmul / float32 softmax / matmul (what the exporter and TensorRT's attention fusion want).
Each graph is built in one precision (``precision``): the matrix products in that dtype, the rest float32.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.fast.static_cache import LayerLinears, decoder_layer, layer_linears, rms_norm
from alpamayo_ros.model.fast.vision import matmul_attention, vision_forward
from alpamayo_ros.runtime.onnx.deployment import Deployment
from alpamayo_ros.runtime.onnx.precision import check_precision, lower_matmuls

VISION = "vision"
EXPERT = "expert_step"
SUBNETS: tuple[str, ...] = (VISION, EXPERT)


def _cpu_copy(module: nn.Module, dtype: torch.dtype) -> Any:
    """``module`` on the CPU in float32 with its matrix products in ``dtype`` (a copy unless nothing changes)."""
    params = list(module.parameters())
    if dtype == torch.float32 and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params):
        return module
    copied = copy.deepcopy(module).to(device="cpu", dtype=torch.float32)
    lower_matmuls(copied, dtype)
    return copied


class VisionGraph(nn.Module):
    """Qwen3-VL vision tower + mergers over equal-size images with explicit tensor inputs (see module doc)."""

    def __init__(self, model: AlpamayoR1, deployment: Deployment, precision: str = "fp32") -> None:
        super().__init__()
        self.dtype = check_precision(precision)
        self.visual = _cpu_copy(model.vlm.model.visual, self.dtype)
        _, h, w = deployment.image_grid_thw
        self.chunk = h * w  # one attention block per frame, as transformers' cu_seqlens
        self.num_deepstack = len(self.visual.deepstack_visual_indexes)

    @property
    def output_names(self) -> list[str]:
        return ["image_embeds"] + [f"deepstack_{i}" for i in range(self.num_deepstack)]

    def forward(
        self, pixel_values: torch.Tensor, pos_embeds: torch.Tensor, rope_cos: torch.Tensor, rope_sin: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        outputs = vision_forward(
            self.visual, pixel_values, pos_embeds, rope_cos, rope_sin, self.chunk, attend=matmul_attention
        )
        return tuple(outputs)


class ExpertStepGraph(nn.Module):
    """One flow-matching velocity evaluation over a static-capacity prefix KV buffer (see module doc)."""

    def __init__(self, model: AlpamayoR1, deployment: Deployment, precision: str = "fp32") -> None:
        super().__init__()
        self.dtype = check_precision(precision)
        self.expert = _cpu_copy(model.expert, self.dtype)
        # the in-projection (Fourier features) and the out-projection stay float32 (precision.py)
        self.action_in_proj = _cpu_copy(model.action_in_proj, torch.float32)
        self.action_out_proj = _cpu_copy(model.action_out_proj, torch.float32)
        cfg = self.expert.config
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(cfg.num_key_value_heads)
        self.head_dim = int(cfg.head_dim)
        self.n_tokens = int(model.n_action_tokens)
        self.rows = deployment.num_samples
        self.linears: list[LayerLinears] = [layer_linears(layer, share=False) for layer in self.expert.layers]

    @property
    def output_names(self) -> list[str]:
        return ["velocity"]

    def forward(  # noqa: PLR0917 (the graph's inputs, positional for the exporter)
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        prefix_keys: torch.Tensor,
        prefix_values: torch.Tensor,
        prefix_visible: torch.Tensor,
        rope_cos: torch.Tensor,
        rope_sin: torch.Tensor,
    ) -> torch.Tensor:
        h = self.action_in_proj(x, t).to(self.dtype)
        cos, sin = rope_cos[:, :, None], rope_sin[:, :, None]  # (rows, n, 1, d), float32
        # action tokens see each other; made on the mask's device (no host copy, so a CUDA graph can capture it)
        own = torch.ones(self.rows, self.n_tokens, dtype=torch.bool, device=prefix_visible.device)
        mask = torch.cat([prefix_visible, own], dim=-1)[:, None, None, :]
        for index, layer in enumerate(self.expert.layers):

            def store(k: torch.Tensor, v: torch.Tensor, index: int = index) -> tuple[torch.Tensor, torch.Tensor]:
                keys = torch.cat([prefix_keys[index].to(k.dtype), k], dim=2)  # (rows, kv, capacity + n, d)
                return keys, torch.cat([prefix_values[index].to(v.dtype), v], dim=2)

            h = decoder_layer(
                layer, self.linears[index], h, cos=cos, sin=sin, store=store, mask=mask,
                heads=self.heads, kv_heads=self.kv_heads, head_dim=self.head_dim,
            )  # fmt: skip
        h = rms_norm(h.float(), self.expert.norm)  # final norm and out-projection in float32 (no rounding between)
        velocity: torch.Tensor = self.action_out_proj(h).float()
        return velocity


def make_graph(model: AlpamayoR1, deployment: Deployment, subnet: str, precision: str = "fp32") -> nn.Module:
    if subnet == VISION:
        return VisionGraph(model, deployment, precision)
    if subnet == EXPERT:
        return ExpertStepGraph(model, deployment, precision)
    raise ValueError(f"unknown subnet {subnet!r}")


def output_names(graph: nn.Module) -> list[str]:
    names: list[str] = graph.output_names  # type: ignore[assignment]
    return list(names)
