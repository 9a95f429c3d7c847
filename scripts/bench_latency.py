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
FP8 decode weights: batched vision tower, prefill into a static KV buffer, one CUDA graph per decode step, one for
all 10 Euler steps; on the CPU the same code runs without graphs; eos and the marker banned through
``fast_variants.VariantRollout``); ``onnxruntime`` = vision + expert step from the ONNX exports (tiny only: a
float32 CPU run of the full-size graphs would take minutes per inference, and exporting them minutes more);
``tensorrt`` where ``tensorrt`` imports (never on our machines).

Rooflines (computed from the architecture, rates measured here): decode = bytes read per token (decoder layers +
final norm + lm_head + KV cache) / device-to-device copy bandwidth (bytes read + written); expert step = (expert
weights + prefix KV) / copy bandwidth; prefill and vision = FLOPs / bf16 8192^3 matmul rate; FP8 backends are
compared with the decode bound of 1-byte decoder-linear weights. The prefill/decode
decision (``docs/benchmarks/decode_design_h200_2026-11-26.md``) needs: eager vs graphed-static decode ms/token beside
the decode roofline.

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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.config import QWEN3_VL_8B_CONFIG, ActionInProjConfig, AlpamayoConfig, validate
from alpamayo_ros.model.flow_matching import euler_sample
from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig, mask_trajectory_tokens, select_next
from alpamayo_ros.model.history import history_token_ids
from alpamayo_ros.model.presets import tiny_config
from alpamayo_ros.model.rollout import StageClock
from alpamayo_ros.model.rope import mrope_position_ids
from alpamayo_ros.runtime import onnx as ox

STAGES = ("vision", "prefill", "decode_per_token", "action", "total")
NUM_IMAGES, GRID, HISTORY_TOKENS, REASONING_TOKENS, FLOW_STEPS, SAMPLES = 16, (1, 20, 36), 48, 40, 10, 1
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
    from fast_variants import VariantRollout

    from alpamayo_ros.model.fast import FastOptions
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
    banned = (x.future_start, IM_END_ID, PAD_ID)
    fast = VariantRollout(model, tokens, FastOptions(fp8_decode=fp8), banned=banned)
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


# -- onnxruntime / tensorrt ----------------------------------------------------------------------------------------
def accelerated_runner(  # noqa: PLR0917
    backend: str, model: AlpamayoR1, cfg_name: str, x: Inputs, device: torch.device, seed: int, work: Path
) -> tuple[Callable[[], dict[str, float]], str, Callable[[], None]]:
    from alpamayo_ros.runtime.accelerated import AcceleratedStages, SubnetRunner, ort_runner

    prompt_len = int(x.ids.shape[1])
    deployment = ox.Deployment(NUM_IMAGES, GRID, prompt_len + REASONING_TOKENS + 8, SAMPLES)
    cpu_model = build_model(
        tiny_config() if cfg_name == "tiny" else full_config(), torch.device("cpu"), torch.float32, seed
    )
    manifest = ox.export_all(cpu_model, deployment, work, model_fingerprint=f"bench-{cfg_name}-seed{seed}", log=print)
    del cpu_model
    note = ""
    if backend == "onnxruntime":
        vision: SubnetRunner = ort_runner(work, manifest.graph(ox.VISION), device, print)
        expert: SubnetRunner = ort_runner(work, manifest.graph(ox.EXPERT), device, print)
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
                    Result(backend, skipped="tensorrt does not import here (the wheels on our machines are stubs)")
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
                    elif backend in ("torch-fast", "torch-fast-fp8"):
                        run, note = model_fast_runner(model, x, device, fp8=backend.endswith("fp8"))
                    else:
                        with torch.inference_mode(False):
                            work = Path(tempfile.mkdtemp(prefix=f"bench_{setting}_{backend}_"))
                            run, note, cleanup = accelerated_runner(backend, model, setting, x, device, args.seed, work)
                    result = measure(backend, device, run, warmup, runs, note)
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
    if "torch-eager" not in by or "torch-fast" not in by:  # the bf16 static-cache path (fp8 is another bound)
        return ""
    best = "torch-fast"
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
    parser.add_argument(
        "--backends",
        default="torch-eager,torch-fast,torch-fast-fp8,onnxruntime,tensorrt",
        help="comma-separated subset: torch-eager (reference), torch-fast / torch-fast-fp8 (the model's fast path), "
        "onnxruntime, tensorrt",
    )
    args = parser.parse_args(argv)
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
    report: dict[str, Any] = {"env": env, "rates": rates, "args": vars(args) | {"json": str(args.json)}, "settings": []}
    for setting in settings:
        report["settings"].append(bench_setting(setting, device, args, rates, backends))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\n[bench] done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
