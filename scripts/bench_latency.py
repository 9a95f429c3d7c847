#!/usr/bin/env python3
"""Per-stage latency of Alpamayo-R1 per backend, beside the roofline of each stage (a script, not a timed test).

Settings: (a) ``full``: the release architecture (Qwen3-VL-8B + 2.3B expert) with random bf16 weights built on the
GPU (no checkpoint), 16 images at 320x576 (2880 visual tokens, prompt 3006 tokens with 48 history tokens),
40 reasoning tokens forced (fed whatever is sampled, so every run decodes exactly 40), 10 flow steps, 1 sample;
(b) ``tiny``: the tiny preset with the same prompt and loop. Stages: vision, prefill (embedding + decoder over the
prompt), decode per token (one decode step incl. trajectory-token mask and top-p sampling), action (expert context
+ 10 Euler steps + waypoints), and the end-to-end sum; p50/p90/p99 over ``--runs`` runs after ``--warmup`` runs;
peak GPU memory per backend.

Backends: ``torch-eager`` = the model's own stage methods (transformers modules, DynamicCache), the reference;
``torch-fast`` / ``torch-fast-fp8`` = the model code's fast path (``alpamayo_ros.model.fast.FastRollout``, bf16 or
FP8 decode weights), skipped where the code has none; ``torch-probe`` = a probe of the PyTorch fast path built
here from the export wrappers (named torch-fast in the first H200 runs): batched-SDPA vision tower in
one CUDA graph, eager prefill into a static KV buffer, one CUDA graph per decode step (device-side position,
mask, grouped-query attention over the static cache with the query heads of a KV head as rows, top-p +
Gumbel-max sampling), one CUDA graph for all 10 Euler steps over the static prefix (``--attention``: explicit
matmul/softmax or SDPA) (on the CPU the
same code runs without graphs); ``onnxruntime`` = vision + expert step from the ONNX exports (tiny only: a float32
CPU run of the full-size graphs would take minutes per inference, and exporting them minutes more); ``tensorrt``
where ``tensorrt`` imports (never on our machines).

Rooflines (computed from the architecture, rates measured here): decode = bytes read per token (decoder layers +
final norm + lm_head + KV cache) / device-to-device copy bandwidth (bytes read + written); expert step = (expert
weights + prefix KV) / copy bandwidth; prefill and vision = FLOPs / bf16 8192^3 matmul rate; FP8 backends are
compared with the decode bound of 1-byte decoder-linear weights. The prefill/decode
decision of ``runtime/accelerated.py`` needs: eager vs graphed-static decode ms/token beside the decode roofline.

    python scripts/bench_latency.py                 # GPU: full + tiny, 50 runs each
    python scripts/bench_latency.py --quick --only full --json out.json
    python scripts/bench_latency.py --cpu-smoke     # CPU: tiny only, a few runs (checks the script)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.config import QWEN3_VL_8B_CONFIG, ActionInProjConfig, AlpamayoConfig, validate
from alpamayo_ros.model.flow_matching import euler_sample
from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig, mask_trajectory_tokens, select_next
from alpamayo_ros.model.history import history_token_ids
from alpamayo_ros.model.presets import tiny_config
from alpamayo_ros.model.rollout import StageClock
from alpamayo_ros.model.rope import mrope_position_ids
from alpamayo_ros.runtime import onnx_export as ox

STAGES = ("vision", "prefill", "decode_per_token", "action", "total")
NUM_IMAGES, GRID, HISTORY_TOKENS, REASONING_TOKENS, FLOW_STEPS, SAMPLES = 16, (1, 20, 36), 48, 40, 10, 1
# Attention of the fast-path probe (decode step and expert): "explicit" (matmul / float32 softmax / matmul) or "sdpa"
# (scaled_dot_product_attention with the additive mask). Measured on an H200 (2026-11-26): explicit decode
# 10.38 ms/token vs sdpa 11.06 (the masked SDPA call goes to cuDNN's flash kernel, 65 us per layer for one query
# row group); expert 10 steps 115 vs 109 ms. Set by --attention.
ATTENTION = {"mode": "explicit"}
SAMPLING = SamplingConfig(max_new_tokens=REASONING_TOKENS, temperature=0.6, top_p=0.98)


# -- model and inputs ----------------------------------------------------------------------------------------------
def full_config() -> AlpamayoConfig:
    """The release architecture (fixtures' manifest): Qwen3-VL-8B, expert 2048/8256/16 heads, in-proj 512 x 2."""
    vlm = copy.deepcopy(QWEN3_VL_8B_CONFIG)
    vlm["vocab_size"] = vlm["text_config"]["vocab_size"] = 155697
    cfg = dataclasses.replace(
        tiny_config(),
        vlm=vlm,
        expert_overrides={"hidden_size": 2048, "intermediate_size": 8256, "num_attention_heads": 16, "head_dim": 128},
        action_in_proj=ActionInProjConfig(hidden_size=512, num_enc_layers=2, num_fourier_feats=20, max_freq=100.0),
        tie_word_embeddings=False,
        vlm_source="bench: Qwen3-VL-8B architecture, random weights",
    )
    validate(cfg)
    return cfg


def build_model(cfg: AlpamayoConfig, device: torch.device, dtype: torch.dtype, seed: int = 0) -> AlpamayoR1:
    """Random weights created directly on ``device`` in ``dtype`` (transformers' init; no checkpoint, no copy)."""
    previous = torch.get_default_dtype()
    torch.manual_seed(seed)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            model = AlpamayoR1(cfg)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        model.action_out_proj.weight.mul_(0.01)  # keep the random flow tame, as the presets do
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


@dataclass
class Inputs:
    ids: torch.Tensor  # (1, L) prompt with fused history tokens
    ids_placeholders: torch.Tensor  # (1, L) the same with <|traj_history|> placeholders (for whole rollouts)
    grids: torch.Tensor  # (16, 3)
    pixels: torch.Tensor  # (11520, 1536)
    position_ids: torch.Tensor  # (3, 1, L)
    rope_deltas: torch.Tensor  # (1, 1)
    forced: torch.Tensor  # (40,) reasoning tokens fed back, the last one <|traj_future_start|>
    noise: torch.Tensor  # (1, 64, 2)
    hist_xyz: torch.Tensor
    hist_rot: torch.Tensor
    future_start: int


def make_inputs(model: AlpamayoR1, device: torch.device) -> Inputs:
    """The Alpamayo prompt layout with synthetic text ids (no tokenizer needed): 3006 tokens for 16 images."""
    cfg, vcfg = model.cfg, model.vlm.config
    gen = torch.Generator().manual_seed(0)
    merge = int(vcfg.vision_config.spatial_merge_size)
    per_image = GRID[0] * GRID[1] * GRID[2] // merge**2
    text = lambda n: torch.randint(100, 150000, (n,), generator=gen).tolist()  # noqa: E731
    ids: list[int] = text(14)  # system turn + user header
    for _ in range(NUM_IMAGES):
        ids += (
            [int(vcfg.vision_start_token_id)] + [int(vcfg.image_token_id)] * per_image + [int(vcfg.vision_end_token_id)]
        )
    hist_xyz = torch.zeros(1, 16, 3)
    hist_xyz[0, :, 0] = torch.linspace(-15.0, 0.0, 16)
    history = history_token_ids(hist_xyz, cfg.hist_tokenizer, cfg.hist_token_start_idx)[0].tolist()
    start = len(ids) + 1
    ids += [cfg.traj_token_ids["history_start"], *history, cfg.traj_token_ids["history_end"]]
    ids += text(30)  # instruction, turn markers, assistant header, <|cot_start|>
    input_ids = torch.tensor([ids], device=device)
    placeholders = input_ids.clone()
    placeholders[0, start : start + HISTORY_TOKENS] = cfg.traj_token_ids["history"]
    grids = torch.tensor([list(GRID)] * NUM_IMAGES, device=device)
    positions, deltas = mrope_position_ids(input_ids, grids, int(vcfg.image_token_id), merge)
    future_start = cfg.traj_token_ids["future_start"]
    forced = torch.tensor([*text(REASONING_TOKENS - 1), future_start], device=device)
    row = int(vcfg.vision_config.in_channels) * int(vcfg.vision_config.temporal_patch_size) * 16 * 16
    return Inputs(
        ids=input_ids,
        ids_placeholders=placeholders,
        grids=grids,
        pixels=torch.randn(NUM_IMAGES * GRID[1] * GRID[2], row, generator=gen).to(device, model.dtype),
        position_ids=positions,
        rope_deltas=deltas,
        forced=forced,
        noise=torch.randn(SAMPLES, 64, 2, generator=gen).to(device),
        hist_xyz=hist_xyz.to(device),
        hist_rot=torch.eye(3).expand(1, 16, 3, 3).contiguous().to(device),
        future_start=future_start,
    )


# -- timing --------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    runs_ms: dict[str, list[float]] = field(default_factory=dict)
    peak_gib: float = float("nan")
    note: str = ""
    skipped: str = ""
    checks: dict[str, float] = field(default_factory=dict)

    def add(self, laps: dict[str, float]) -> None:
        row = {
            "vision": laps["vision"],
            "prefill": laps["prefill"],
            "decode_per_token": laps["decode"] / REASONING_TOKENS,
            "action": laps["action"],
            "total": laps["vision"] + laps["prefill"] + laps["decode"] + laps["action"],
        }
        for k, v in row.items():
            self.runs_ms.setdefault(k, []).append(v)

    def pct(self, stage: str, q: float) -> float:
        values = self.runs_ms.get(stage, [])
        return float(np.percentile(values, q)) if values else float("nan")


def measure(  # noqa: PLR0917
    name: str, device: torch.device, run_once: Callable[[], dict[str, float]], warmup: int, runs: int, note: str = ""
) -> Result:
    result = Result(name, note=note)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        run_once()
    for _ in range(runs):
        result.add(run_once())
    if device.type == "cuda":
        result.peak_gib = torch.cuda.max_memory_allocated() / 2**30
    return result


# -- torch eager (reference) ---------------------------------------------------------------------------------------
def eager_runner(model: AlpamayoR1, x: Inputs, device: torch.device) -> Callable[[], dict[str, float]]:
    from transformers.cache_utils import DynamicCache

    gen = torch.Generator(device=device).manual_seed(0)
    lm = model.language_model

    def run() -> dict[str, float]:
        clock = StageClock(device)
        vision = model.encode_images(x.pixels, x.grids)
        clock.lap("vision")
        cache = DynamicCache(config=lm.config)
        logits, _ = model.prefill(x.ids, vision, x.position_ids, cache)
        clock.lap("prefill")
        for i in range(REASONING_TOKENS):
            masked = mask_trajectory_tokens(logits, model.cfg.traj_token_start_idx, model.cfg.traj_vocab_size)
            select_next(masked, SAMPLING, gen)  # sampled, then the forced token is fed (fixed length)
            logits = model.decode_step(x.forced[i].view(1, 1), cache, x.rope_deltas)
        clock.lap("decode")
        sequences = torch.cat([x.ids, x.forced[None], x.forced[None, -1:]], dim=1)
        ctx = model.expert_context(cache, sequences, x.rope_deltas, x.future_start)
        action = euler_sample(lambda a, t: model.expert_step(ctx, a, t).velocity, x.noise, FLOW_STEPS)
        model.action_space.action_to_traj(action, x.hist_xyz, x.hist_rot)
        clock.lap("action")
        return clock.ms

    return run


# -- the model's own fast path (alpamayo_ros.model.fast), when the code has one ------------------------------------
PAD_ID, IM_END_ID = 151643, 151645  # Qwen <|endoftext|> (pad) and <|im_end|>


def model_fast_runner(
    model: AlpamayoR1, x: Inputs, device: torch.device, fp8: bool
) -> tuple[Callable[[], dict[str, float]], str]:
    """``FastRollout`` over the same prompt; eos and the trajectory marker are banned so every run decodes 40 tokens.

    Raises ImportError where the model code has no fast path.
    """
    from alpamayo_ros.model.fast import FastOptions, FastRollout
    from alpamayo_ros.model.rollout import RolloutInputs, RolloutSettings

    cfg = model.cfg
    tokens = DecodeTokens(
        traj_start=cfg.traj_token_start_idx,
        traj_vocab_size=cfg.traj_vocab_size,
        future_start=x.future_start,
        pad=PAD_ID,
        eos=(IM_END_ID, PAD_ID),
        history_placeholder=cfg.traj_token_ids["history"],
    )
    options = FastOptions(banned_tokens=(x.future_start, IM_END_ID, PAD_ID), fp8_decode=fp8)
    fast = FastRollout(model, tokens, options)
    inputs = RolloutInputs(x.ids_placeholders, x.pixels, x.grids, x.hist_xyz, x.hist_rot)
    # max_new_tokens 41: the first token comes from the prefill logits, then 40 decode steps (as the eager loop)
    sampling = dataclasses.replace(SAMPLING, max_new_tokens=REASONING_TOKENS + 1)
    settings = RolloutSettings(sampling=sampling, num_samples=SAMPLES, flow_steps=FLOW_STEPS)
    gen = torch.Generator(device=device).manual_seed(0)

    def run() -> dict[str, float]:
        result = fast(inputs, settings, generator=gen, noise=x.noise)
        steps = fast.info.decode_steps
        if steps != REASONING_TOKENS:
            raise RuntimeError(f"the fast rollout decoded {steps} steps, not {REASONING_TOKENS}")
        return dict(result.timings_ms)

    info = fast.info
    fp8_note = f", FP8 decode ({info.fp8_mode}: {info.fp8_note})" if fp8 else ""
    graphs = "CUDA graphs" if device.type == "cuda" else "no graphs (CPU)"
    return run, f"alpamayo_ros.model.fast.FastRollout{fp8_note}, {graphs}"


# -- torch fast path probe -----------------------------------------------------------------------------------------
def _rotate_half(t: torch.Tensor) -> torch.Tensor:
    half = t.shape[-1] // 2
    return torch.cat((-t[..., half:], t[..., :half]), dim=-1)


class StaticDecoder(nn.Module):
    """One decode step over a static KV buffer, all state on the device (position, counter, sampled tokens).

    Grouped-query attention reads each KV head once (no repeat); the mask is ``arange(capacity) <= position``;
    sampling = trajectory-token mask, temperature, top-p, Gumbel-max (no multinomial, no host sync).
    """

    def __init__(self, model: AlpamayoR1, capacity: int, forced: torch.Tensor, rope_delta: int) -> None:
        super().__init__()
        self.model = model
        lm = model.language_model
        cfg = lm.config
        self.layers_n, self.kv, self.d = int(cfg.num_hidden_layers), int(cfg.num_key_value_heads), int(cfg.head_dim)
        self.heads = int(cfg.num_attention_heads)
        device, dtype = model.device, model.dtype
        self.keys = torch.zeros(self.layers_n, 1, self.kv, capacity, self.d, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.capacity = capacity
        self.pos = torch.zeros(1, dtype=torch.long, device=device)  # tokens in the cache
        self.step_index = torch.zeros(1, dtype=torch.long, device=device)
        self.forced = forced
        self.sampled = torch.zeros(len(forced), dtype=torch.long, device=device)
        self.delta = torch.tensor(rope_delta, device=device)
        self.columns = torch.arange(capacity, device=device)
        self.logits = torch.zeros(1, int(model.vlm.lm_head.weight.shape[0]), device=device)
        self.traj = (model.cfg.traj_token_start_idx, model.cfg.traj_vocab_size)
        self.attention = ATTENTION["mode"]  # explicit (bmm, float32 softmax) | sdpa (with the mask: cuDNN on H200)
        self.with_head = True  # profiling variants switch off the lm_head and/or the sampling
        self.with_sampling = True

    def load_prefix(self, cache: Any, length: int) -> None:
        for i, layer in enumerate(cache.layers):
            self.keys[i, :, :, :length] = layer.keys
            self.values[i, :, :, :length] = layer.values
        self.pos.fill_(length)
        self.step_index.zero_()

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        start, size = self.traj
        scores = logits.float().clone()
        scores[:, start : start + size] = float("-inf")
        scores = scores / SAMPLING.temperature
        sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= (1.0 - SAMPLING.top_p)
        drop[..., -1:] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        gumbel = -torch.log(-torch.log(torch.rand_like(scores).clamp_(1e-20, 1.0)))
        return (scores + gumbel).argmax(dim=-1)

    def forward(self) -> None:
        lm = self.model.language_model
        token = self.forced.index_select(0, self.step_index).view(1, 1)
        h = lm.embed_tokens(token)
        position_ids = (self.pos + self.delta).view(1, 1, 1).expand(3, 1, 1)
        cos, sin = lm.rotary_emb(h, position_ids)
        cos, sin = cos[:, None], sin[:, None]
        mask = torch.where(self.columns <= self.pos, 0.0, float("-inf")).view(1, 1, 1, -1)
        if self.attention == "sdpa":
            mask = mask.to(h.dtype)
        group = self.heads // self.kv
        for i, layer in enumerate(lm.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_norm(attn.q_proj(x).view(1, 1, self.heads, self.d)).transpose(1, 2)
            k = attn.k_norm(attn.k_proj(x).view(1, 1, self.kv, self.d)).transpose(1, 2)
            v = attn.v_proj(x).view(1, 1, self.kv, self.d).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            self.keys[i].index_copy_(2, self.pos, k)
            self.values[i].index_copy_(2, self.pos, v)
            # the query heads of one KV head act as `group` query rows: GQA without repeating K/V
            qg = q.reshape(1, self.kv, group, self.d)
            if self.attention == "sdpa":
                grouped = nn.functional.scaled_dot_product_attention(qg, self.keys[i], self.values[i], attn_mask=mask)
            else:
                scores = torch.matmul(qg, self.keys[i].transpose(-1, -2)).float() * (self.d**-0.5) + mask
                grouped = torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), self.values[i])
            out = grouped.reshape(1, 1, self.heads * self.d)
            h = h + attn.o_proj(out)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        if self.with_head:
            logits = self.model.vlm.lm_head(lm.norm(h)[:, -1])
            self.logits.copy_(logits.float())
            if self.with_sampling:
                self.sampled.index_copy_(0, self.step_index, self.sample(logits))
        self.pos.add_(1)
        self.step_index.add_(1)


class Graphed:
    """``fn()`` captured once in a CUDA graph on CUDA (replayed by ``__call__``), called directly elsewhere."""

    def __init__(self, fn: Callable[[], Any], device: torch.device, warmup: int = 2) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        if device.type == "cuda":
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(warmup):
                    fn()
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = fn()

    def __call__(self) -> Any:
        if self.graph is None:
            return self.fn()
        self.graph.replay()
        return self.out


def fast_runner(model: AlpamayoR1, x: Inputs, device: torch.device) -> tuple[Callable[[], dict[str, float]], str]:
    from transformers.cache_utils import DynamicCache

    prompt_len = int(x.ids.shape[1])
    capacity = prompt_len + REASONING_TOKENS + 8
    deployment = ox.Deployment(NUM_IMAGES, GRID, capacity, SAMPLES)
    vision_wrapper = ox.VisionEncoderWrapper(model, deployment, attention="sdpa")
    aux = {k: v.to(device) for k, v in ox.vision_aux_inputs(model, deployment).items()}
    pixels = x.pixels.clone()
    vision_graph = Graphed(lambda: vision_wrapper(pixels, **aux), device)

    decoder = StaticDecoder(model, capacity, x.forced, int(x.rope_deltas.item()))
    cache0 = DynamicCache(config=model.language_model.config)
    vision0 = model.encode_images(x.pixels, x.grids)
    model.prefill(x.ids, vision0, x.position_ids, cache0)
    decoder.load_prefix(cache0, prompt_len)
    decode_graph = Graphed(decoder, device)  # the warm-up steps advanced the state; load_prefix resets it per run

    expert = ox.ExpertStepWrapper(model, deployment, attention=ATTENTION["mode"])
    n = int(model.n_action_tokens)
    x_buf = x.noise.clone()
    prefix_mask = torch.zeros(SAMPLES, capacity, device=device)
    cos_buf = torch.zeros(SAMPLES, n, int(model.expert.config.head_dim), device=device)
    sin_buf = torch.zeros_like(cos_buf)
    times = [torch.full((SAMPLES, 1, 1), i / FLOW_STEPS, device=device) for i in range(FLOW_STEPS)]

    def flow() -> torch.Tensor:
        a = x_buf
        for t in times:
            a = a + (1.0 / FLOW_STEPS) * expert(a, t, decoder.keys, decoder.values, prefix_mask, cos_buf, sin_buf)
        return a

    flow_graph = Graphed(flow, device)
    ids_with_forced = torch.cat([x.ids, x.forced[None]], dim=1)

    def run() -> dict[str, float]:
        clock = StageClock(device)
        pixels.copy_(x.pixels)
        embeds, *deepstack = vision_graph()
        clock.lap("vision")
        from alpamayo_ros.model.alpamayo_r1 import VisionOutput

        cache = DynamicCache(config=model.language_model.config)
        model.prefill(x.ids, VisionOutput(embeds, list(deepstack)), x.position_ids, cache)
        decoder.load_prefix(cache, prompt_len)
        clock.lap("prefill")
        for _ in range(REASONING_TOKENS):
            decode_graph()
        clock.lap("decode")
        # expert context: offset after <|traj_future_start|>, positions, mask over the static buffer
        is_start = ids_with_forced == x.future_start
        offset = is_start.int().argmax(dim=1) + 1
        length = prompt_len + REASONING_TOKENS  # cache = prompt + fed tokens
        positions = torch.arange(n, device=device)[None] + (x.rope_deltas + offset[:, None])
        cos, sin = ox.expert_rope(model, positions[None].expand(3, 1, n))
        cos_buf.copy_(cos)
        sin_buf.copy_(sin)
        cols = torch.arange(capacity, device=device)[None]
        prefix_mask.copy_(
            torch.where((cols >= offset[:, None]) | (cols >= length), torch.finfo(torch.float32).min, 0.0)
        )
        x_buf.copy_(x.noise)
        action = flow_graph()
        model.action_space.action_to_traj(action.float(), x.hist_xyz, x.hist_rot)
        clock.lap("action")
        return clock.ms

    graphs = "CUDA graphs: vision, decode step, 10-step flow" if device.type == "cuda" else "no graphs (CPU)"
    return run, f"probe: batched SDPA vision, eager prefill, static KV, {ATTENTION['mode']} attention, {graphs}"


def fast_vs_eager(model: AlpamayoR1, x: Inputs, device: torch.device) -> dict[str, float]:
    """Max |fast - eager| of the vision embeddings and of one decode step's logits (same inputs; a sanity check)."""
    from transformers.cache_utils import DynamicCache

    prompt_len = int(x.ids.shape[1])
    deployment = ox.Deployment(NUM_IMAGES, GRID, prompt_len + REASONING_TOKENS + 8, SAMPLES)
    aux = {k: v.to(device) for k, v in ox.vision_aux_inputs(model, deployment).items()}
    eager_vision = model.encode_images(x.pixels, x.grids)
    fast_vision = ox.VisionEncoderWrapper(model, deployment, attention="sdpa")(x.pixels, **aux)
    cache = DynamicCache(config=model.language_model.config)
    model.prefill(x.ids, eager_vision, x.position_ids, cache)
    decoder = StaticDecoder(model, deployment.prefix_capacity, x.forced, int(x.rope_deltas.item()))
    decoder.load_prefix(cache, prompt_len)
    decoder()
    eager_logits = model.decode_step(x.forced[:1].view(1, 1), cache, x.rope_deltas)
    return {
        "vision_max_abs_diff": float((fast_vision[0].float() - eager_vision.image_embeds.float()).abs().max()),
        "vision_max_abs": float(eager_vision.image_embeds.float().abs().max()),
        "decode_logits_max_abs_diff": float((decoder.logits - eager_logits).abs().max()),
        "decode_logits_max_abs": float(eager_logits.abs().max()),
    }


# -- profile of the fast path (where the time goes) ----------------------------------------------------------------
def _timed_ms(fn: Callable[[], Any], device: torch.device, reps: int) -> list[float]:
    """Wall-clock ms of ``reps`` calls after 3 warm-up calls (device-synchronised)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        clock = StageClock(device)
        fn()
        clock.lap("t")
        times.append(clock.ms["t"])
    return times


def _median_ms(fn: Callable[[], Any], device: torch.device, reps: int = 20) -> float:
    return float(np.median(_timed_ms(fn, device, reps)))


def _top_kernels(fn: Callable[[], Any], device: torch.device, top: int = 10) -> list[str]:
    """Kernel names with their summed device time for one call (un-graphed), biggest first."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    if device.type == "cuda":
        events = [e for e in prof.key_averages() if e.device_time_total > 0 and not e.key.startswith("aten")]
        cost = {e.key: e.device_time_total for e in events}
    else:  # CPU: operator self time (the script's smoke mode)
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
        cost = {e.key: e.self_cpu_time_total for e in events}
    events.sort(key=lambda e: cost[e.key], reverse=True)
    total = sum(cost.values()) / 1000.0
    lines = [f"kernel time {total:.2f} ms in {sum(e.count for e in events)} launches"]
    lines += [f"{cost[e.key] / 1000.0:8.3f} ms x{e.count:<5} {e.key[:90]}" for e in events[:top]]
    return lines


def profile_fast(model: AlpamayoR1, x: Inputs, device: torch.device, roof: dict[str, Any]) -> dict[str, Any]:
    """Breakdown of the fast-path probe: decode-step variants, GEMV bandwidth, flow graph vs action_to_traj."""
    from transformers.cache_utils import DynamicCache

    out: dict[str, Any] = {}
    prompt_len = int(x.ids.shape[1])
    capacity = prompt_len + REASONING_TOKENS + 8
    cache = DynamicCache(config=model.language_model.config)
    vision = model.encode_images(x.pixels, x.grids)
    model.prefill(x.ids, vision, x.position_ids, cache)
    decoder = StaticDecoder(model, capacity, x.forced, int(x.rope_deltas.item()))

    def steps(graph: Graphed) -> Callable[[], None]:
        def run() -> None:
            decoder.pos.fill_(prompt_len)
            decoder.step_index.zero_()
            for _ in range(REASONING_TOKENS):
                graph()

        return run

    decoder.load_prefix(cache, prompt_len)
    for head, sampling in ((True, True), (True, False), (False, False)):
        decoder.with_head, decoder.with_sampling = head, sampling
        decoder.pos.fill_(prompt_len)
        decoder.step_index.zero_()  # the capture's warm-up steps advance the state
        graph = Graphed(decoder, device)
        name = "decode_step_ms" + ("" if sampling else "_no_sampling") + ("" if head else "_no_lm_head")
        out[name] = _median_ms(steps(graph), device, reps=5) / REASONING_TOKENS
    decoder.with_head, decoder.with_sampling = True, True
    lm = model.language_model
    h = torch.randn(1, 1, int(lm.config.hidden_size), device=device, dtype=model.dtype)
    mlp = lm.layers[0].mlp
    gemv = Graphed(lambda: [mlp.gate_proj(h) for _ in range(100)], device)
    gemv_ms = _median_ms(gemv, device) / 100
    out["gemv_4096x12288_ms"] = gemv_ms
    out["gemv_bandwidth_tb_s"] = mlp.gate_proj.weight.numel() * 2 / (gemv_ms / 1e3) / 1e12
    head = Graphed(lambda: [model.vlm.lm_head(h) for _ in range(10)], device)
    out["lm_head_ms"] = _median_ms(head, device) / 10

    def one_decode_step() -> None:
        decoder.pos.fill_(prompt_len)
        decoder.step_index.zero_()
        decoder()

    out["decode_step_kernels"] = _top_kernels(one_decode_step, device)

    deployment = ox.Deployment(NUM_IMAGES, GRID, capacity, SAMPLES)
    expert = ox.ExpertStepWrapper(model, deployment, attention=ATTENTION["mode"])
    n = int(model.n_action_tokens)
    positions = (torch.arange(n, device=device)[None] + prompt_len + 40 + x.rope_deltas)[None].expand(3, 1, n)
    cos, sin = ox.expert_rope(model, positions)
    mask = torch.zeros(SAMPLES, capacity, device=device)
    mask[:, prompt_len + REASONING_TOKENS :] = torch.finfo(torch.float32).min
    a = x.noise.clone()
    t = torch.full((SAMPLES, 1, 1), 0.5, device=device)

    def one_step() -> torch.Tensor:
        return expert(a, t, decoder.keys, decoder.values, mask, cos, sin)

    def flow() -> torch.Tensor:
        y = a
        for i in range(FLOW_STEPS):
            y = y + (1.0 / FLOW_STEPS) * expert(
                y, torch.full_like(t, i / FLOW_STEPS), decoder.keys, decoder.values, mask, cos, sin
            )
        return y

    out["expert_step_eager_ms"] = _median_ms(one_step, device)
    out["expert_flow_graph_ms"] = _median_ms(Graphed(flow, device), device)
    out["expert_step_roofline_ms"] = roof["ms"]["action"] / FLOW_STEPS
    out["action_to_traj_ms"] = _median_ms(lambda: model.action_space.action_to_traj(a, x.hist_xyz, x.hist_rot), device)
    out["expert_step_kernels"] = _top_kernels(one_step, device)
    for key, value in out.items():
        if isinstance(value, list):
            print(f"[profile] {key}:")
            for line in value:
                print(f"[profile]   {line}")
        else:
            print(f"[profile] {key}: {value:.3f}")
    return out


# -- onnxruntime / tensorrt ----------------------------------------------------------------------------------------
def accelerated_runner(  # noqa: PLR0917
    backend: str, model: AlpamayoR1, cfg_name: str, x: Inputs, device: torch.device, seed: int, work: Path
) -> tuple[Callable[[], dict[str, float]], str, Callable[[], None]]:
    from alpamayo_ros.runtime.accelerated import AcceleratedStages, OrtRunner, SubnetRunner

    prompt_len = int(x.ids.shape[1])
    deployment = ox.Deployment(NUM_IMAGES, GRID, prompt_len + REASONING_TOKENS + 8, SAMPLES)
    cpu_model = build_model(
        tiny_config() if cfg_name == "tiny" else full_config(), torch.device("cpu"), torch.float32, seed
    )
    manifest = ox.export_all(cpu_model, deployment, work, model_fingerprint=f"bench-{cfg_name}-seed{seed}", log=print)
    del cpu_model
    note = ""
    if backend == "onnxruntime":
        vision: SubnetRunner = OrtRunner(work / "vision.onnx", manifest.subnets[ox.VISION], device, print)
        expert: SubnetRunner = OrtRunner(work / "expert_step.onnx", manifest.subnets[ox.EXPERT], device, print)
        on_cuda = getattr(vision, "on_cuda", False)
        note = "CUDA EP" if on_cuda else "CPU EP (tensors copied to/from the host)"
    else:
        from alpamayo_ros.runtime.accelerated import tensorrt_runners

        vision, expert = tensorrt_runners(work, manifest, print)
        note = "engines bf16"
    stages = AcceleratedStages(model, deployment, vision, expert)
    stages.install()
    eager = eager_runner(model, x, device)

    def run() -> dict[str, float]:
        try:
            return eager()
        finally:
            stages.release()

    return run, f"vision + expert step via {backend} ({note}); prefill/decode torch eager", stages.uninstall


# -- rates and rooflines -------------------------------------------------------------------------------------------
def measure_rates(device: torch.device) -> dict[str, float]:
    """Copy bandwidth (bytes read + written) and matmul rate (bf16 on CUDA, float32 on CPU), each best of 10."""
    cuda = device.type == "cuda"
    size = (1 << 31) if cuda else (1 << 27)
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    n = 8192 if cuda else 1024
    dtype = torch.bfloat16 if cuda else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def best(fn: Callable[[], Any], reps: int = 10) -> float:
        return min(_timed_ms(fn, device, reps)) / 1000.0

    copy_s = best(lambda: dst.copy_(src))
    mm_s = best(lambda: torch.matmul(a, b))
    return {"copy_bytes_per_s": 2 * size / copy_s, "matmul_flops_per_s": 2 * n**3 / mm_s, "matmul_dtype": str(dtype)}


def _linear_params(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def rooflines(model: AlpamayoR1, x: Inputs, rates: dict[str, float]) -> dict[str, Any]:
    """Per-stage lower bounds (ms) from the architecture and the measured rates."""
    bytes_per = torch.finfo(model.dtype).bits // 8
    lm, visual = model.language_model, model.vlm.model.visual
    tcfg, vcfg = lm.config, visual.config
    L = int(x.ids.shape[1])  # noqa: N806
    layers, kv, d = int(tcfg.num_hidden_layers), int(tcfg.num_key_value_heads), int(tcfg.head_dim)
    patches = NUM_IMAGES * GRID[0] * GRID[1] * GRID[2]
    merged = patches // int(vcfg.spatial_merge_size) ** 2
    # vision: linears over patches (blocks) and merged tokens (mergers), attention per image, patch embedding conv
    block_linear = sum(_linear_params(b) for b in visual.blocks)
    merger_linear = _linear_params(visual.merger) + sum(_linear_params(m) for m in visual.deepstack_merger_list)
    per_image = GRID[0] * GRID[1] * GRID[2]
    vision_attn = int(vcfg.depth) * NUM_IMAGES * 4 * per_image**2 * int(vcfg.hidden_size)
    conv = 2 * visual.patch_embed.proj.weight.numel() * patches
    vision_flops = 2 * block_linear * patches + 2 * merger_linear * merged + vision_attn + conv
    # prefill: decoder linears over L tokens, causal attention (half of QK^T and PV), lm_head for one row
    lm_linear = sum(_linear_params(layer) for layer in lm.layers)
    q_width = int(tcfg.num_attention_heads) * d
    prefill_flops = 2 * lm_linear * L + layers * 2 * L * L * q_width + 2 * model.vlm.lm_head.weight.numel()
    # decode: every decoder weight, the final norm and lm_head once per token, plus the KV cache (mid-reasoning)
    decode_weights = (lm_linear + sum(p.numel() for n, p in lm.named_parameters() if "norm" in n)) * bytes_per
    decode_weights += model.vlm.lm_head.weight.numel() * bytes_per
    kv_bytes = 2 * layers * kv * d * (L + REASONING_TOKENS // 2) * bytes_per
    decode_bytes = decode_weights + kv_bytes
    # expert step: all expert weights + in/out projections, plus the prefix KV (prompt + reasoning)
    expert_weights = sum(p.numel() for p in model.expert.parameters()) + sum(
        p.numel() for p in model.action_in_proj.parameters()
    )
    expert_bytes = expert_weights * bytes_per + 2 * layers * kv * d * (L + REASONING_TOKENS) * bytes_per
    bw, mm = rates["copy_bytes_per_s"], rates["matmul_flops_per_s"]
    ms = {
        "vision": vision_flops / mm * 1e3,
        "prefill": prefill_flops / mm * 1e3,
        "decode_per_token": decode_bytes / bw * 1e3,
        "action": FLOW_STEPS * expert_bytes / bw * 1e3,
    }
    ms["total"] = ms["vision"] + ms["prefill"] + REASONING_TOKENS * ms["decode_per_token"] + ms["action"]
    # FP8 decode weights (1 byte per decoder-linear weight; norms and KV stay bf16, lm_head stays bf16)
    fp8_bytes = decode_bytes - lm_linear * bytes_per + lm_linear
    ms_fp8 = dict(ms, decode_per_token=fp8_bytes / bw * 1e3)
    ms_fp8["total"] = ms["total"] + REASONING_TOKENS * (ms_fp8["decode_per_token"] - ms["decode_per_token"])
    return {
        "ms": ms,
        "ms_fp8_decode": ms_fp8,
        "vision_tflop": vision_flops / 1e12,
        "prefill_tflop": prefill_flops / 1e12,
        "decode_gb_per_token": decode_bytes / 1e9,
        "decode_kv_gb": kv_bytes / 1e9,
        "expert_gb_per_step": expert_bytes / 1e9,
        "prompt_tokens": L,
    }


# -- report --------------------------------------------------------------------------------------------------------
def print_table(setting: str, results: list[Result], roof: dict[str, Any], rates: dict[str, float]) -> None:
    print(
        f"\n== {setting}: prompt {roof['prompt_tokens']} tokens, {REASONING_TOKENS} reasoning tokens, "
        f"{FLOW_STEPS} flow steps, {SAMPLES} sample | copy {rates['copy_bytes_per_s'] / 1e12:.3g} TB/s, matmul "
        f"{rates['matmul_flops_per_s'] / 1e12:.3g} TFLOP/s ({rates['matmul_dtype']})"
    )
    print(
        f"   roofline inputs: vision {roof['vision_tflop']:.3g} TFLOP, prefill {roof['prefill_tflop']:.3g} TFLOP, "
        f"decode {roof['decode_gb_per_token']:.3g} GB/token (KV {roof['decode_kv_gb']:.3g}), expert "
        f"{roof['expert_gb_per_step']:.3g} GB/step"
    )
    head = (
        f"{'backend':<15} {'stage':<17} {'p50 ms':>10} {'p90 ms':>10} {'p99 ms':>10} {'roofline':>10} {'p50/roof':>9}"
    )
    print(head)
    print("-" * len(head))
    eager_total = next((r.pct("total", 50) for r in results if r.backend == "torch-eager" and not r.skipped), None)
    for r in results:
        if r.skipped:
            print(f"{r.backend:<15} skipped: {r.skipped}")
            continue
        for stage in STAGES:
            roof_ms = roof["ms_fp8_decode" if r.backend.endswith("fp8") else "ms"][stage]
            p50 = r.pct(stage, 50)
            print(
                f"{r.backend:<15} {stage:<17} {p50:>10.2f} {r.pct(stage, 90):>10.2f} {r.pct(stage, 99):>10.2f} "
                f"{roof_ms:>10.2f} {p50 / roof_ms:>8.1f}x"
            )
        extra = ""
        if eager_total and r.backend != "torch-eager":
            extra = f", {eager_total / r.pct('total', 50):.1f}x faster than eager end to end"
        peak = f"peak GPU memory {r.peak_gib:.1f} GiB" if math.isfinite(r.peak_gib) else "peak GPU memory n/a (CPU)"
        print(f"{'':<15} {len(r.runs_ms['total'])} runs, {peak}{extra}; {r.note}")
        for k, v in r.checks.items():
            print(f"{'':<15} check {k}: {v:.3g}")


@contextlib.contextmanager
def _phase(label: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"[bench] {label} ...", flush=True)
    yield
    print(f"[bench] {label} done in {time.perf_counter() - started:.1f} s", flush=True)


def bench_setting(
    setting: str, device: torch.device, args: argparse.Namespace, rates: dict[str, float], backends: list[str]
) -> dict[str, Any]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = full_config() if setting == "full" else tiny_config()
    with _phase(f"{setting}: building random {dtype} model on {device}"):
        model = build_model(cfg, device, dtype, args.seed)
        x = make_inputs(model, device)
    roof = rooflines(model, x, rates)
    warmup, runs = args.warmup, args.runs
    if setting == "full" and args.full_runs is not None:
        runs = args.full_runs
    results: list[Result] = []
    with torch.inference_mode():
        for backend in backends:
            if backend in ("onnxruntime", "tensorrt") and setting == "full":
                results.append(
                    Result(
                        backend,
                        skipped="full-size graphs are not exported in the benchmark (float32 "
                        "export of 2.9B parameters takes minutes; CPU onnxruntime minutes per inference)",
                    )
                )
                continue
            if backend == "tensorrt" and not _tensorrt_ok():
                results.append(
                    Result(backend, skipped="tensorrt does not import here (not installable on our machines)")
                )
                continue
            with _phase(f"{setting}: {backend} ({warmup} warm-up + {runs} runs)"):
                note, cleanup = "", None
                try:
                    if backend == "torch-eager":
                        run, note = (
                            eager_runner(model, x, device),
                            "model stage methods, DynamicCache, transformers SDPA",
                        )
                    elif backend == "torch-probe":
                        run, note = fast_runner(model, x, device)
                    elif backend in ("torch-fast", "torch-fast-fp8"):
                        run, note = model_fast_runner(model, x, device, fp8=backend.endswith("fp8"))
                    else:
                        with torch.inference_mode(False):
                            work = Path(tempfile.mkdtemp(prefix=f"bench_{setting}_{backend}_"))
                            run, note, cleanup = accelerated_runner(backend, model, setting, x, device, args.seed, work)
                    result = measure(backend, device, run, warmup, runs, note)
                    if backend == "torch-probe":
                        result.checks = fast_vs_eager(model, x, device)
                except Exception as exc:  # a backend failing must not hide the others' figures
                    result = Result(backend, skipped=f"failed: {type(exc).__name__}: {exc}")
                finally:
                    if cleanup is not None:
                        cleanup()
                results.append(result)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    print_table(setting, results, roof, rates)
    decision = _decision(results, roof)
    if decision:
        print(decision)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "setting": setting,
        "rooflines": roof,
        "decision": decision,
        "results": [dataclasses.asdict(r) | {"p50": {s: r.pct(s, 50) for s in STAGES}} for r in results],
    }


def _decision(results: list[Result], roof: dict[str, Any]) -> str:
    by = {r.backend: r for r in results if not r.skipped}
    graphed = [b for b in ("torch-fast", "torch-probe") if b in by]  # bf16 static-cache paths (fp8 is another bound)
    if "torch-eager" not in by or not graphed:
        return ""
    best = min(graphed, key=lambda b: by[b].pct("decode_per_token", 50))
    eager, fast = by["torch-eager"].pct("decode_per_token", 50), by[best].pct("decode_per_token", 50)
    bound = roof["ms"]["decode_per_token"]
    return (
        f"decode decision input: eager {eager:.2f} ms/token, static KV + CUDA graph ({best}) {fast:.2f} ms/token, "
        f"bf16 roofline {bound:.2f} ms/token -> graphed PyTorch at {fast / bound:.2f}x the bound; an ONNX/TensorRT "
        f"bf16 decoder can win at most that factor on decode"
    )


def _tensorrt_ok() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (warm-up 1, 10 runs; full-size 5 runs)")
    parser.add_argument("--only", choices=("full", "tiny"), help="one setting only")
    parser.add_argument("--json", type=Path, help="write all figures to this JSON file")
    parser.add_argument("--cpu-smoke", action="store_true", help="CPU, tiny only, 1 warm-up + 3 runs")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--full-runs", type=int, default=None, help="runs for the full-size setting (default --runs)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attention", choices=("explicit", "sdpa"), default="explicit", help="fast-path attention")
    parser.add_argument("--profile", action="store_true", help="only a breakdown of the fast-path probe (--only)")
    parser.add_argument(
        "--backends",
        default="torch-eager,torch-fast,torch-fast-fp8,torch-probe,onnxruntime,tensorrt",
        help="comma-separated subset: torch-eager (reference), torch-fast / torch-fast-fp8 (the model's fast path), "
        "torch-probe (this script's graphed probe), onnxruntime, tensorrt",
    )
    args = parser.parse_args(argv)
    ATTENTION["mode"] = args.attention
    if args.quick:
        args.warmup, args.runs, args.full_runs = 1, 10, 5
    if args.cpu_smoke:
        args.warmup, args.runs, args.only = 1, 3, "tiny"
        device = torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            print("no CUDA GPU: use --cpu-smoke for a CPU run of the tiny setting", file=sys.stderr)
            return 2
        device = torch.device("cuda")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started = time.perf_counter()
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
    }
    import transformers

    env["transformers"] = transformers.__version__
    try:
        import onnxruntime

        env["onnxruntime"] = f"{onnxruntime.__version__} {onnxruntime.get_available_providers()}"
    except ImportError:
        env["onnxruntime"] = "not installed"
    print(f"[bench] {env}")
    with _phase("measuring copy bandwidth and matmul rate"):
        rates = measure_rates(device)
    settings = [args.only] if args.only else ["full", "tiny"]
    if args.profile:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        for setting in settings:
            model = build_model(full_config() if setting == "full" else tiny_config(), device, dtype, args.seed)
            x = make_inputs(model, device)
            with torch.inference_mode():
                result = profile_fast(model, x, device, rooflines(model, x, rates))
            if args.json:
                args.json.write_text(json.dumps({"env": env, "rates": rates, setting: result}, indent=2) + "\n")
            del model
        return 0
    report: dict[str, Any] = {"env": env, "rates": rates, "args": vars(args) | {"json": str(args.json)}, "settings": []}
    for setting in settings:
        report["settings"].append(bench_setting(setting, device, args, rates, backends))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\n[bench] done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
