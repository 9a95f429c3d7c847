"""The vision tower for equal-size images as one batched computation (capturable as one CUDA graph).

transformers' SDPA path splits the patches per image with ``cu_seqlens.tolist()`` (a host sync) and runs one
attention call per image and layer (16 x 27 here); its position embeddings and rotary tables are rebuilt on every
call with host loops. With equal grids (the rig's 16 cameras x frames all have one size) the images are a batch:
(images, heads, patches, head_dim) and one SDPA call per layer, no mask. The position embeddings and rotary tables
depend only on the grids, so they are computed once per grid set (by the model's own functions).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, VisionOutput
from alpamayo_ros.model.fast.static_cache import apply_rope, signed_sin


def uniform_grids(image_grid_thw: torch.Tensor) -> bool:
    grids = image_grid_thw.reshape(-1, 3)
    return bool((grids == grids[:1]).all())


class StaticVision:
    """Buffers (pixels, position embeddings, rotary cos/sin) and the tower's forward for one set of equal grids."""

    def __init__(self, model: AlpamayoR1, image_grid_thw: torch.Tensor) -> None:
        if not uniform_grids(image_grid_thw):
            raise ValueError("the batched vision tower needs equal image grids")
        self.model = model
        visual: Any = model.vlm.model.visual
        self.visual = visual
        device, dtype = model.device, model.dtype
        grids = image_grid_thw.to(device)
        t, h, w = (int(v) for v in image_grid_thw[0])
        self.chunk = h * w  # transformers' attention chunks are frames (cu_seqlens = repeat(h*w, t))
        self.patches = int(image_grid_thw.shape[0]) * t * h * w
        cfg = visual.config
        self.heads = int(cfg.num_heads)
        self.head_dim = int(cfg.hidden_size) // self.heads
        with torch.no_grad():
            self.pos_embeds = visual.fast_pos_embed_interpolate(grids).to(dtype)
            rotary = visual.rot_pos_emb(grids).reshape(self.patches, -1)
            emb = torch.cat((rotary, rotary), dim=-1)
            # (patches, 1, 1, head_dim) float32 (transformers' vision rope runs in float32); sin signed for roll
            self.cos = emb.cos().float()[:, None, None, :]
            self.sin = signed_sin(emb.sin().float())[:, None, None, :]
        in_dim = int(cfg.in_channels) * int(cfg.temporal_patch_size) * int(cfg.patch_size) ** 2
        self.pixels = torch.zeros(self.patches, in_dim, device=device, dtype=dtype)
        self.deepstack_layers = list(cfg.deepstack_visual_indexes)

    def load(self, pixel_values: torch.Tensor) -> None:
        if pixel_values.shape != self.pixels.shape:
            raise ValueError(f"pixel_values {tuple(pixel_values.shape)} != {tuple(self.pixels.shape)}")
        self.pixels.copy_(pixel_values)

    def __call__(self) -> torch.Tensor:
        """-> (1 + deepstack, merged tokens, out_hidden): the merger output, then each deepstack merger's."""
        visual = self.visual
        n, heads, d, chunk = self.patches, self.heads, self.head_dim, self.chunk
        h = visual.patch_embed(self.pixels) + self.pos_embeds
        deepstack: list[torch.Tensor] = []
        for index, block in enumerate(visual.blocks):
            attn = block.attn
            x = block.norm1(h)
            qkv = attn.qkv(x).reshape(n, 3, heads, d)
            qk = qkv[:, :2].float()  # q and k rotated together, in float32 as transformers does
            qk = apply_rope(qk, self.cos, self.sin).to(qkv.dtype)
            q, k, v = (t.reshape(n // chunk, chunk, heads, d).transpose(1, 2) for t in (qk[:, 0], qk[:, 1], qkv[:, 2]))
            out = F.scaled_dot_product_attention(q, k, v, scale=float(attn.scaling))
            h = h + attn.proj(out.transpose(1, 2).reshape(n, heads * d))
            h = h + block.mlp(block.norm2(h))
            if index in self.deepstack_layers:
                deepstack.append(visual.deepstack_merger_list[self.deepstack_layers.index(index)](h))
        return torch.stack([visual.merger(h), *deepstack])

    @staticmethod
    def split(stacked: torch.Tensor) -> VisionOutput:
        return VisionOutput(image_embeds=stacked[0], deepstack=list(stacked[1:]))
