"""The flow-matching loop over the static cache: all Euler steps (in-proj -> expert -> out-proj -> x += dt v) as one
function, captured as one CUDA graph.

The expert's layer i attends to VLM layer i's columns [0, valid) (``valid`` = min(offset, cache length): the
reasoning after ``<|traj_future_start|>`` is hidden, as in ``AlpamayoR1.expert_context``) and to the 64 action
tokens, whose K/V each step writes into the tail columns of the same buffer (no cat, no crop). Action tokens see
each other bidirectionally. Positions (arange(64) + rope_delta + offset) and their cos/sin are computed once per call.
"""

from __future__ import annotations

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.fast import static_cache as sc
from alpamayo_ros.model.flow_matching import time_grid


class StaticFlow:
    """Static buffers (x, cos/sin, mask, flow times) and the whole Euler loop for a fixed (rows, capacity, steps)."""

    def __init__(
        self,
        model: AlpamayoR1,
        kv: sc.StaticKV,
        linears: list[sc.LayerLinears],
        num_steps: int,
        attend: sc.GroupedAttention = sc.grouped_attention,
    ) -> None:
        self.model, self.kv, self.linears, self.num_steps = model, kv, linears, num_steps
        self.attend = attend
        cfg = model.expert.config
        self.heads, self.kv_heads = int(cfg.num_attention_heads), int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads))
        if self.kv_heads != kv.keys.shape[2] or self.head_dim != kv.keys.shape[4]:
            raise ValueError("the expert's KV heads / head_dim differ from the VLM cache")
        rows, n = kv.rows, model.n_action_tokens
        device = model.device
        self.n = n
        self.x = torch.zeros(rows, n, model.action_space.dims[1], dtype=torch.float32, device=device)
        self.cos = torch.zeros(rows, n, 1, self.head_dim, dtype=model.dtype, device=device)
        self.sin = torch.zeros_like(self.cos)
        self.mask = torch.zeros(rows, 1, 1, kv.keys.shape[3], dtype=torch.bool, device=device)
        # the reference integrator's grid (linspace, not i / N): the same numbers to the last bit
        grid = time_grid(num_steps, device, torch.float32)
        self.times = [grid[i].expand(rows, 1, 1).clone() for i in range(num_steps)]
        self.steps = [grid[i + 1] - grid[i] for i in range(num_steps)]

    def prepare(self, offsets: torch.Tensor, prefix_len: int, rope_deltas: torch.Tensor, noise: torch.Tensor) -> None:
        """Per call: action positions / rope, the visibility mask of the cache columns, the initial noise."""
        rows, device = self.kv.rows, self.x.device
        offsets = offsets.to(device).reshape(rows)
        positions = torch.arange(self.n, device=device)[None, :] + (rope_deltas.reshape(rows, 1) + offsets[:, None])
        cos, sin = sc.rope_tables(self.model.expert.rotary_emb, positions, self.cos.dtype)
        self.cos.copy_(cos[:, :, None])
        self.sin.copy_(sin[:, :, None])
        valid = torch.clamp(offsets, max=prefix_len)
        columns = torch.arange(self.mask.shape[-1], device=device)[None, :]
        visible = (columns < valid[:, None]) | (columns >= self.kv.capacity)
        self.mask.copy_(visible[:, None, None, :])
        self.x.copy_(noise)

    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        model = self.model
        h = model.action_in_proj(x, t)
        tail = slice(self.kv.capacity, None)

        def write(keys: torch.Tensor, values: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
            keys[:, :, tail].copy_(k)
            values[:, :, tail].copy_(v)

        every = slice(None)
        for i, layer in enumerate(model.expert.layers):
            h = sc.decoder_layer(
                layer, self.linears[i], h, cos=self.cos, sin=self.sin, store=self.kv.store(i, write, every),
                mask=self.mask, heads=self.heads, kv_heads=self.kv_heads, head_dim=self.head_dim, attend=self.attend,
            )  # fmt: skip
        velocity: torch.Tensor = model.action_out_proj(sc.rms_norm(h, model.expert.norm)).float()
        return velocity

    def __call__(self) -> torch.Tensor:
        """x_0 (in ``self.x``) -> x_1 after ``num_steps`` Euler steps (flow_matching.euler_sample's arithmetic)."""
        x = self.x
        for t, dt in zip(self.times, self.steps, strict=True):
            x = x + dt * self.velocity(x, t)
        return x
