"""Static KV buffers and the per-layer math shared by the graphed decode step and the graphed flow loop.

Layout per layer: ``keys[i]`` / ``values[i]`` of shape (rows, kv_heads, capacity + n_action, head_dim). Columns
``[0, capacity)`` hold the prompt and the reasoning (prefill copies the prompt in, each decode step writes one column
in place); columns ``[capacity, capacity + n_action)`` are the action tokens' K/V, rewritten by every Euler step.
So the expert reads the VLM cache where it lies (no copy, no ``cat``, no crop); which columns a query may see is an
bool mask built on the device. Attention is grouped-query by reshaping the queries to (rows, kv_heads,
group * q_len, head_dim), so each KV head is read once (no ``repeat_kv``).

The same functions build the ONNX graphs of ``runtime/onnx`` (vision tower, expert step), including their
reduced-precision variants. Precision rule: norm statistics run in the dtype of the norm's weight and rotary
embeddings in the dtype of the cos/sin tables, and the result is cast back to the activation dtype. In the PyTorch
path all of them share the model's dtype, so every cast is a no-op and the kernels are unchanged. A reduced-precision
export keeps the norm weights and tables in float32. A strongly typed TensorRT network runs each op in its tensors'
type, so these float32 islands have to be written into the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Linear = Callable[[torch.Tensor], torch.Tensor]
# (new keys, new values) of a layer -> the (keys, values) its attention reads; may store the new ones first
KVStore = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (q (rows, heads, q_len, d), keys, values (rows, kv, cols, d), bool mask, scale) -> (rows, q_len, heads * d)
GroupedAttention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


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

    def store(
        self, index: int, write: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None], view: slice
    ) -> KVStore:
        """Layer ``index``'s store: ``write(keys_i, values_i, k, v)`` in place; attention then reads columns
        ``view``."""
        keys, values = self.keys[index], self.values[index]

        def store(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            write(keys, values, k, v)
            return keys[:, :, view], values[:, :, view]

        return store


def rms_norm(x: torch.Tensor, norm: Any) -> torch.Tensor:
    """transformers' Qwen3 RMSNorm as one fused kernel (statistics in float32; the weight multiplies before the
    final rounding instead of after it: <= 1 bf16 ulp apart, identical in float32). Computed in the weight's dtype
    (see the module doc), returned in x's."""
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    weight = norm.weight
    return F.rms_norm(x.to(weight.dtype), (x.shape[-1],), weight=weight, eps=eps).to(x.dtype)


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """``norm(x)`` computed in the weight's dtype and returned in x's (the vision tower's norms)."""
    weight = norm.weight
    out = F.layer_norm(x.to(weight.dtype), norm.normalized_shape, weight, norm.bias, norm.eps)
    return out.to(x.dtype)


def signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """sin with the first half negated, so that rotate_half(x) * sin == roll(x, d/2) * signed_sin (exact), where
    rotate_half(x) = cat(-x[d/2:], x[:d/2]) is transformers' rotation."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """x (..., d) with cos / signed sin broadcastable to it: x * cos + rotate_half(x) * sin in 3 kernels, computed in
    the tables' dtype and returned in x's."""
    work = x.to(cos.dtype)
    return torch.addcmul(work * cos, torch.roll(work, work.shape[-1] // 2, dims=-1), sin_signed).to(x.dtype)


def rope_tables(rotary: nn.Module, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / signed sin (rows, n, d) of the interleaved-mRoPE module for positions (rows, n), equal on all 3 axes."""
    probe = torch.zeros((), device=positions.device, dtype=dtype)
    cos, sin = rotary(probe, positions[None].expand(3, *positions.shape))
    return cos, signed_sin(sin)


def explicit_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(q k^T * scale) v as two batched GEMMs: scores in the activation dtype, softmax in float32, bool
    ``mask`` True = visible. The form TensorRT's attention fusion and the ONNX exporter take, and on the GPU the
    decode's choice (cuBLAS spreads the key columns over the whole chip)."""
    scores = torch.matmul(q * scale, keys.transpose(-1, -2))
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1, dtype=torch.float32).to(values.dtype), values)


def grouped_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """Grouped-query attention as plain attention over the KV heads: the ``group`` query heads of one KV head
    become extra query rows, so K/V are read once (no repeat_kv).

    q (rows, heads, q_len, d); keys/values (rows, kv, cols, d); bool mask (True = visible) broadcastable to
    (rows, kv, group * q_len, cols). Returns (rows, q_len, heads * d).
    """
    rows, heads, q_len, d = q.shape
    kv = keys.shape[1]
    qg = q.reshape(rows, kv, (heads // kv) * q_len, d)
    out = explicit_attention(qg, keys, values, scale, mask)
    return out.reshape(rows, heads, q_len, d).transpose(1, 2).reshape(rows, q_len, heads * d)


@dataclass
class LayerLinears:
    """The matrix products of one decoder layer; fused where the inputs are shared (one GEMV instead of 2-3)."""

    qkv: Linear  # -> (q | k | v)
    o: Linear
    gate_up: Linear  # -> (gate | up)
    down: Linear
    act: Linear
    residual: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]  # (h, x, linear) -> h + linear(x)
    qk_norm: torch.Tensor  # (heads + kv_heads, head_dim): q_norm's weight per query head, then k_norm's
    qk_eps: float
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


def _residual_addmm(h: torch.Tensor, x: torch.Tensor, weights: dict[int, torch.Tensor], linear: Any) -> torch.Tensor:
    """h + linear(x) as one GEMM with the add in its epilogue when ``linear`` is one of this layer's bf16/fp32
    products (``weights`` by id); other products (FP8) fall back to a separate add."""
    weight = weights.get(id(linear))
    if weight is None:
        out: torch.Tensor = h + linear(x)
        return out
    flat = torch.addmm(h.reshape(-1, h.shape[-1]), x.reshape(-1, x.shape[-1]), weight.t())
    return flat.view(h.shape)


def qk_norm_weight(attn: Any) -> torch.Tensor:
    """One weight row per head for normalising q and k heads in one call (q_norm and k_norm share the eps)."""
    heads = attn.q_proj.weight.shape[0] // attn.head_dim
    kv_heads = attn.k_proj.weight.shape[0] // attn.head_dim
    if float(attn.q_norm.variance_epsilon) != float(attn.k_norm.variance_epsilon):
        raise ValueError("q_norm and k_norm eps differ")
    return torch.cat([attn.q_norm.weight.expand(heads, -1), attn.k_norm.weight.expand(kv_heads, -1)]).contiguous()


def layer_linears(layer: Any, share: bool = True) -> LayerLinears:
    """Fused QKV and gate/up products of a transformers Qwen3-VL text decoder layer (no biases in Qwen3)."""
    attn, mlp = layer.self_attn, layer.mlp
    parts = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    if any(getattr(p, "bias", None) is not None for p in parts):
        raise ValueError("fused decode linears assume bias-free projections (Qwen3 attention_bias=False)")
    qkv = _fused_weight([attn.q_proj, attn.k_proj, attn.v_proj], share)
    gate_up = _fused_weight([mlp.gate_proj, mlp.up_proj], share)
    o_w, down_w = attn.o_proj.weight, mlp.down_proj.weight

    def o_lin(x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, o_w)

    def down_lin(x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, down_w)

    own = {id(o_lin): o_w, id(down_lin): down_w}
    return LayerLinears(
        qkv=lambda x: F.linear(x, qkv),
        o=o_lin,
        gate_up=lambda x: F.linear(x, gate_up),
        down=down_lin,
        act=mlp.act_fn,
        residual=lambda h, x, linear: _residual_addmm(h, x, own, linear),
        qk_norm=qk_norm_weight(attn),
        qk_eps=float(attn.q_norm.variance_epsilon),
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
    store: KVStore,
    mask: torch.Tensor | None,
    heads: int,
    kv_heads: int,
    head_dim: int,
    causal_self: bool = False,
    attend: GroupedAttention = grouped_attention,
) -> torch.Tensor:
    """One Qwen3-VL text decoder layer: h (rows, q_len, hidden) -> same.

    cos / signed sin (rows, q_len, 1, d); ``store(k, v)`` receives the new K/V (rows, kv, q_len, d) and returns what
    attention reads, under the bool ``mask``. ``causal_self`` (the prefill): attention is causal over the layer's own
    new K/V (flash SDPA) and ``mask`` is unused. q and k heads are normalised and rotated together (one norm, one
    rope for both), in the dtype of the norm weight and of the tables respectively.
    """
    attn = layer.self_attn
    x = rms_norm(h, layer.input_layernorm)
    qkv = lin.qkv(x)
    qk_size = lin.q_size + lin.kv_size
    qk = qkv[..., :qk_size].reshape(*qkv.shape[:-1], heads + kv_heads, head_dim)
    weight = lin.qk_norm
    qk_work = F.rms_norm(qk.to(weight.dtype), (head_dim,), eps=lin.qk_eps) * weight
    qk = apply_rope(qk_work, cos, sin).to(qkv.dtype)
    q = qk[:, :, :heads].transpose(1, 2)
    k = qk[:, :, heads:].transpose(1, 2)
    v = qkv[..., qk_size:].reshape(*qkv.shape[:-1], kv_heads, head_dim).transpose(1, 2)
    keys, values = store(k, v)
    if causal_self:
        rows, _, q_len, _ = q.shape
        group = heads // kv_heads  # K/V repeated per query head (a few MB per layer at prompt length): the flash
        # kernel then takes it on every torch build, where enable_gqa may route to the math kernel (L x L scores)
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=float(attn.scaling))
        out = out.transpose(1, 2).reshape(rows, q_len, heads * head_dim)
    else:
        if mask is None:
            raise ValueError("attention over a cache needs a visibility mask")
        out = attend(q, keys, values, mask, float(attn.scaling))
    h = lin.residual(h, out, lin.o)
    x = rms_norm(h, layer.post_attention_layernorm)
    gate, up = torch.split(lin.gate_up(x), [lin.intermediate, lin.intermediate], dim=-1)
    return lin.residual(h, lin.act(gate) * up, lin.down)
