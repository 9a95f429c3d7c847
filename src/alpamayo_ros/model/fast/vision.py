"""The vision tower for equal-size images as one batched computation (capturable as one CUDA graph).

transformers' SDPA path splits the patches per image with ``cu_seqlens.tolist()`` (a host sync) and runs one
attention call per image and layer (16 x 27 here); its position embeddings and rotary tables are rebuilt on every
call with host loops. With equal grids (the rig's 16 cameras x frames all have one size) the images are a batch:
(images, heads, patches, head_dim) and one attention call per layer, no mask. The position embeddings and rotary
tables depend only on the grids, so they are computed once per grid set (by the model's own functions).

:func:`vision_forward` is also the body of the exported vision graph (``runtime/onnx``), there with explicit
matmul/softmax attention instead of SDPA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, VisionOutput
from alpamayo_ros.model.fast.static_cache import apply_rope, explicit_attention, layer_norm, signed_sin

# (q, k, v (batch, heads, patches, d), scale) -> (batch, heads, patches, d), no mask
VisionAttention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """One fused SDPA call (flash on the GPU): the PyTorch path."""
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """matmul / float32 softmax / matmul: the exported form (softmax stays float32 in reduced-precision graphs)."""
    return explicit_attention(q, k, v, scale)


def uniform_grids(image_grid_thw: torch.Tensor) -> bool:
    grids = image_grid_thw.reshape(-1, 3)
    return bool((grids == grids[:1]).all())


def vision_tables(model: AlpamayoR1, image_grid_thw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-grid-set inputs of the tower, by the model's own functions: interpolated position embeddings
    (patches, hidden) in the model dtype, and rotary cos / signed sin (patches, head_dim) in float32 (transformers'
    vision rope runs in float32)."""
    visual: Any = model.vlm.model.visual
    grids = image_grid_thw.to(model.device)
    with torch.no_grad():
        pos_embeds = visual.fast_pos_embed_interpolate(grids).to(model.dtype)
        rotary = visual.rot_pos_emb(grids)
        rotary = rotary.reshape(rotary.shape[0], -1)
        emb = torch.cat((rotary, rotary), dim=-1).float()
    return pos_embeds, emb.cos(), signed_sin(emb.sin())


def _merge(merger: Any, h: torch.Tensor) -> torch.Tensor:
    """Qwen3-VL's patch merger with its norm in the norm weight's dtype (``static_cache.layer_norm``)."""
    size = int(merger.hidden_size)
    x = layer_norm(h.view(-1, size) if merger.use_postshuffle_norm else h, merger.norm).view(-1, size)
    out: torch.Tensor = merger.linear_fc2(merger.act_fn(merger.linear_fc1(x)))
    return out


def vision_forward(  # noqa: PLR0917 (the tower's tensors)
    visual: Any,
    pixels: torch.Tensor,
    pos_embeds: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    chunk: int,
    attend: VisionAttention = sdpa_attention,
) -> list[torch.Tensor]:
    """Patches (N, in_dim) of equal images -> [merger output, deepstack merger outputs...] (N / merge^2, out).

    ``chunk``: patches per attention block (transformers' ``cu_seqlens`` = one frame, h * w patches); cos / signed
    sin (N, head_dim). q and k are rotated in the tables' dtype.
    """
    cfg = visual.config
    heads = int(cfg.num_heads)
    d = int(cfg.hidden_size) // heads
    n = int(pixels.shape[0])
    cos4, sin4 = cos.reshape(n, 1, 1, d), sin.reshape(n, 1, 1, d)
    deepstack_layers = [int(i) for i in visual.deepstack_visual_indexes]
    h = visual.patch_embed(pixels)
    # in the blocks' dtype (a bf16 export keeps the patch embedding float32; elsewhere a no-op)
    h = (h + pos_embeds.to(h.dtype)).to(visual.blocks[0].attn.qkv.weight.dtype)
    deepstack: list[torch.Tensor] = []
    for index, block in enumerate(visual.blocks):
        attn = block.attn
        qkv = attn.qkv(layer_norm(h, block.norm1)).reshape(n, 3, heads, d)
        qk = apply_rope(qkv[:, :2], cos4, sin4)  # q and k rotated together
        q, k, v = (t.reshape(n // chunk, chunk, heads, d).transpose(1, 2) for t in (qk[:, 0], qk[:, 1], qkv[:, 2]))
        out = attend(q, k, v, float(attn.scaling))
        h = h + attn.proj(out.transpose(1, 2).reshape(n, heads * d))
        h = h + block.mlp(layer_norm(h, block.norm2))
        if index in deepstack_layers:
            deepstack.append(_merge(visual.deepstack_merger_list[deepstack_layers.index(index)], h))
    return [_merge(visual.merger, h), *deepstack]


class StaticVision:
    """Buffers (pixels, position embeddings, rotary cos/sin) and the tower's forward for one set of equal grids."""

    def __init__(self, model: AlpamayoR1, image_grid_thw: torch.Tensor) -> None:
        if not uniform_grids(image_grid_thw):
            raise ValueError("the batched vision tower needs equal image grids")
        self.model = model
        visual: Any = model.vlm.model.visual
        self.visual = visual
        _, h, w = (int(v) for v in image_grid_thw[0])
        self.chunk = h * w  # transformers' attention chunks are frames (cu_seqlens = repeat(h*w, t))
        self.pos_embeds, self.cos, self.sin = vision_tables(model, image_grid_thw)
        cfg = visual.config
        in_dim = int(cfg.in_channels) * int(cfg.temporal_patch_size) * int(cfg.patch_size) ** 2
        self.pixels = torch.zeros(self.pos_embeds.shape[0], in_dim, device=model.device, dtype=model.dtype)

    def load(self, pixel_values: torch.Tensor) -> None:
        if pixel_values.shape != self.pixels.shape:
            raise ValueError(f"pixel_values {tuple(pixel_values.shape)} != {tuple(self.pixels.shape)}")
        self.pixels.copy_(pixel_values)

    def __call__(self) -> torch.Tensor:
        """-> (1 + deepstack, merged tokens, out_hidden): the merger output, then each deepstack merger's."""
        outputs = vision_forward(self.visual, self.pixels, self.pos_embeds, self.cos, self.sin, self.chunk)
        return torch.stack(outputs)

    @staticmethod
    def split(stacked: torch.Tensor) -> VisionOutput:
        return VisionOutput(image_embeds=stacked[0], deepstack=list(stacked[1:]))
