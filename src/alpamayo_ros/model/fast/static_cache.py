"""Static KV buffers and the per-layer math shared by the graphed decode step and the graphed flow loop.

Layout per layer: ``keys[i]`` / ``values[i]`` of shape (rows, kv_heads, capacity + n_action, head_dim). Columns
``[0, capacity)`` hold the prompt and the reasoning (prefill copies the prompt in, each decode step writes one column
in place); columns ``[capacity, capacity + n_action)`` are the action tokens' K/V, rewritten by every Euler step.
So the expert reads the VLM cache where it lies (no copy, no ``cat``, no crop); which columns a query may see is an
additive mask built on the device. Attention is grouped-query by reshaping the queries to (rows, kv_heads,
group * q_len, head_dim), so each KV head is read once (no ``repeat_kv``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Linear = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StaticKV:
    keys: torch.Tensor  # (layers, rows, kv_heads, capacity + n_action, head_dim)
    values: torch.Tensor
    capacity: int  # columns for prompt + reasoning; the action tokens follow

    @classmethod
    def allocate(
        cls,
        *,
        layers: int,
        rows: int,
        kv_heads: int,
        capacity: int,
        n_action: int,
        head_dim: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> StaticKV:
        shape = (layers, rows, kv_heads, capacity + n_action, head_dim)
        keys = torch.zeros(shape, device=device, dtype=dtype)
        return cls(keys=keys, values=torch.zeros_like(keys), capacity=capacity)

    @property
    def rows(self) -> int:
        return int(self.keys.shape[1])

    def load_prefix(self, layer_keys: list[torch.Tensor], layer_values: list[torch.Tensor], repeat: int) -> int:
        """Copy a prefill cache (per layer (B, kv, L, d)) into columns [0, L), rows repeated ``repeat`` times."""
        length = int(layer_keys[0].shape[2])
        if length > self.capacity:
            raise ValueError(f"prompt of {length} tokens does not fit the static cache of {self.capacity}")
        for i, (keys, values) in enumerate(zip(layer_keys, layer_values, strict=True)):
            self.keys[i, :, :, :length].copy_(keys.repeat_interleave(repeat, dim=0) if repeat > 1 else keys)
            self.values[i, :, :, :length].copy_(values.repeat_interleave(repeat, dim=0) if repeat > 1 else values)
        return length


def rms_norm(x: torch.Tensor, norm: Any) -> torch.Tensor:
    """transformers' Qwen3 RMSNorm (float32 statistics, cast back, then the weight) with the fused kernel."""
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    weight: torch.Tensor = norm.weight
    normed = F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)
    return weight * normed


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (rows, heads, q, d), cos/sin (rows, 1, q, d) in x's dtype (what transformers does)."""
    return x * cos + rotate_half(x) * sin


def rope_tables(rotary: nn.Module, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin (rows, n, d) of the interleaved-mRoPE module for positions (rows, n), equal on the 3 axes."""
    probe = torch.zeros((), device=positions.device, dtype=dtype)
    cos, sin = rotary(probe, positions[None].expand(3, *positions.shape))
    return cos, sin


def grouped_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """q (rows, heads, q_len, d); keys/values (rows, kv, cols, d); additive fp32 mask broadcast to
    (rows, kv, group * q_len, cols). Softmax in float32. Returns (rows, q_len, heads * d)."""
    rows, heads, q_len, d = q.shape
    kv = keys.shape[1]
    qg = q.reshape(rows, kv, (heads // kv) * q_len, d)
    scores = torch.matmul(qg, keys.transpose(-1, -2)).float() * scale + mask
    probs = torch.softmax(scores, dim=-1).to(values.dtype)
    out = torch.matmul(probs, values).reshape(rows, heads, q_len, d)
    return out.transpose(1, 2).reshape(rows, q_len, heads * d)


@dataclass
class LayerLinears:
    """The matrix products of one decoder layer; fused where the inputs are shared (one GEMV instead of 2-3)."""

    qkv: Linear  # -> (q | k | v)
    o: Linear
    gate_up: Linear  # -> (gate | up)
    down: Linear
    act: Linear
    q_size: int
    kv_size: int
    intermediate: int


def _fused_weight(linears: list[nn.Linear], share: bool) -> torch.Tensor:
    """Rows of the linears stacked; with ``share`` the modules' weights become views of it (memory-neutral)."""
    fused = torch.cat([lin.weight.detach() for lin in linears], dim=0)
    if share:
        start = 0
        for lin in linears:
            rows = lin.weight.shape[0]
            lin.weight.data = fused[start : start + rows]
            start += rows
    return fused


def layer_linears(layer: Any, share: bool = True) -> LayerLinears:
    """Fused QKV and gate/up products of a transformers Qwen3-VL text decoder layer (no biases in Qwen3)."""
    attn, mlp = layer.self_attn, layer.mlp
    parts = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    if any(getattr(p, "bias", None) is not None for p in parts):
        raise ValueError("fused decode linears assume bias-free projections (Qwen3 attention_bias=False)")
    qkv = _fused_weight([attn.q_proj, attn.k_proj, attn.v_proj], share)
    gate_up = _fused_weight([mlp.gate_proj, mlp.up_proj], share)
    o_w, down_w = attn.o_proj.weight, mlp.down_proj.weight
    return LayerLinears(
        qkv=lambda x: F.linear(x, qkv),
        o=lambda x: F.linear(x, o_w),
        gate_up=lambda x: F.linear(x, gate_up),
        down=lambda x: F.linear(x, down_w),
        act=mlp.act_fn,
        q_size=int(attn.q_proj.weight.shape[0]),
        kv_size=int(attn.k_proj.weight.shape[0]),
        intermediate=int(mlp.gate_proj.weight.shape[0]),
    )


def decoder_layer(
    layer: Any,
    lin: LayerLinears,
    h: torch.Tensor,
    *,
    cos: torch.Tensor,
    sin: torch.Tensor,
    kv: StaticKV,
    index: int,
    write: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None],
    mask: torch.Tensor,
    heads: int,
    kv_heads: int,
    head_dim: int,
    keys_view: slice,
) -> torch.Tensor:
    """One Qwen3-VL text decoder layer over the static cache: h (rows, q_len, hidden) -> same.

    ``write(keys_i, values_i, k, v)`` stores the new K/V in place; attention reads columns ``keys_view``.
    """
    attn = layer.self_attn
    rows, q_len, _ = h.shape
    x = rms_norm(h, layer.input_layernorm)
    qkv = lin.qkv(x)
    q, k, v = torch.split(qkv, [lin.q_size, lin.kv_size, lin.kv_size], dim=-1)
    q = rms_norm(q.reshape(rows, q_len, heads, head_dim), attn.q_norm).transpose(1, 2)
    k = rms_norm(k.reshape(rows, q_len, kv_heads, head_dim), attn.k_norm).transpose(1, 2)
    v = v.reshape(rows, q_len, kv_heads, head_dim).transpose(1, 2)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    keys, values = kv.keys[index], kv.values[index]
    write(keys, values, k, v)
    out = grouped_attention(q, keys[:, :, keys_view], values[:, :, keys_view], mask, float(attn.scaling))
    h = h + lin.o(out)
    x = rms_norm(h, layer.post_attention_layernorm)
    gate, up = torch.split(lin.gate_up(x), [lin.intermediate, lin.intermediate], dim=-1)
    return h + lin.down(lin.act(gate) * up)
