"""Benchmark-only variants of the fast PyTorch path (``alpamayo_ros.model.fast``), kept out of the product.

* ``banned``: extra token ids masked during the reasoning decode, so every run decodes the same number of tokens
  (the benchmarks ban eos and ``<|traj_future_start|>``).
* ``attention="sdpa"``: the attention over the static cache as one ``scaled_dot_product_attention`` call
  (memory-efficient kernel, float32 scores and softmax) instead of the product's batched GEMMs.
* ``graphs=False``: run the step functions without CUDA graph capture (the fallback figure when capture fails).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.fast import FastOptions, FastRollout
from alpamayo_ros.model.fast.decode_graph import StaticDecoder
from alpamayo_ros.model.fast.expert_graph import StaticFlow
from alpamayo_ros.model.fast.static_cache import GroupedAttention, StaticKV, grouped_attention
from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig

ATTENTIONS = ("matmul", "sdpa")
# masked attention: the memory-efficient kernel (float32 softmax, any mask, capture-safe); math is the CPU fallback
SDPA_BACKENDS = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def sdpa_grouped_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """``static_cache.grouped_attention`` as one SDPA call (its masked kernels run one program per KV head)."""
    rows, heads, q_len, d = q.shape
    kv = keys.shape[1]
    qg = q.reshape(rows, kv, (heads // kv) * q_len, d)
    with sdpa_kernel(SDPA_BACKENDS):
        out = F.scaled_dot_product_attention(qg, keys, values, attn_mask=mask, scale=scale)
    return out.reshape(rows, heads, q_len, d).transpose(1, 2).reshape(rows, q_len, heads * d)


class VariantRollout(FastRollout):
    """``FastRollout`` with the benchmark knobs of the module doc."""

    def __init__(
        self,
        model: AlpamayoR1,
        tokens: DecodeTokens,
        options: FastOptions | None = None,
        *,
        banned: tuple[int, ...] = (),
        attention: str = "matmul",
        graphs: bool = True,
        share_weights: bool = True,
    ) -> None:
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        super().__init__(model, tokens, options, share_weights=share_weights)
        self.banned = banned
        self.attend: GroupedAttention = sdpa_grouped_attention if attention == "sdpa" else grouped_attention
        self.graphs = self.graphs and graphs

    def _decoder(self, kv: StaticKV, prompt_len: int, sampling: SamplingConfig) -> StaticDecoder:
        return StaticDecoder(
            self.model, kv, self.decode_linears, prompt_len=prompt_len, sampling=sampling, tokens=self.tokens,
            banned=self.banned, attend=self.attend,
        )  # fmt: skip

    def _flow(self, kv: StaticKV, flow_steps: int) -> StaticFlow:
        return StaticFlow(self.model, kv, self.expert_linears, flow_steps, self.attend)
