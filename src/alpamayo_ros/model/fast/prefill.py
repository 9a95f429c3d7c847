"""The prompt through the decoder straight into the static KV buffer (no DynamicCache, no copy afterwards).

Same math as ``AlpamayoR1.prefill``: image features scattered into the ``<|image_pad|>`` embeddings, 3-axis mRoPE
from the host-computed position ids, causal attention (flash SDPA), deepstack
features added to the visual positions after the first layers, final norm and lm_head on the last position only.
The fused q/k/v and gate/up products of the decode serve here too (one GEMM instead of two or three).
"""

from __future__ import annotations

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, VisionOutput
from alpamayo_ros.model.fast.static_cache import LayerLinears, StaticKV, decoder_layer, rms_norm, signed_sin


def static_prefill(
    model: AlpamayoR1,
    linears: list[LayerLinears],
    kv: StaticKV,
    input_ids: torch.Tensor,
    vision: VisionOutput,
    *,
    position_ids: torch.Tensor,
    repeat: int,
) -> torch.Tensor:
    """(B, L) fused ids -> last-position logits (B, V) fp32; K/V of row b land in rows b*repeat .. (b+1)*repeat-1
    of ``kv`` (the samples of one input share the prompt), columns [0, L)."""
    lm = model.language_model
    cfg = lm.config
    heads, kv_heads = int(cfg.num_attention_heads), int(cfg.num_key_value_heads)
    head_dim = int(getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads))
    length = int(input_ids.shape[1])
    if length > kv.capacity:
        raise ValueError(f"prompt of {length} tokens does not fit the static cache of {kv.capacity}")
    h, image_mask = model.embed_prompt(input_ids, vision)
    cos, sin = lm.rotary_emb(h, position_ids.to(h.device))
    cos, sin = cos[:, :, None], signed_sin(sin)[:, :, None]
    flat_visual = image_mask.reshape(-1).nonzero().squeeze(1)
    prompt = slice(0, length)

    def write(keys: torch.Tensor, values: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        keys[:, :, prompt].copy_(k.repeat_interleave(repeat, dim=0) if repeat > 1 else k)
        values[:, :, prompt].copy_(v.repeat_interleave(repeat, dim=0) if repeat > 1 else v)

    for i, layer in enumerate(lm.layers):
        h = decoder_layer(
            layer, linears[i], h, cos=cos, sin=sin, store=kv.store(i, write, prompt), mask=None,
            heads=heads, kv_heads=kv_heads, head_dim=head_dim, causal_self=True,
        )  # fmt: skip
        if i < len(vision.deepstack):  # transformers: hidden[visual] = hidden[visual] + deepstack (same rounding)
            h.view(-1, h.shape[-1]).index_add_(0, flat_visual, vision.deepstack[i].to(h.dtype))
    logits: torch.Tensor = model.vlm.lm_head(rms_norm(h[:, -1], lm.norm)).float()
    return logits
