#!/usr/bin/env python3
"""Fast PyTorch path vs the eager rollout: per-stage latency, rooflines, peak memory and agreement (one GPU run).

Full-size R1 architecture (Qwen3-VL-8B + 2.3B expert) with random bf16 weights built on the GPU, 16 images at
320x576 (prompt 3006 tokens incl. 48 history tokens), exactly 40 reasoning tokens (eos and
``<|traj_future_start|>`` masked: the eager path through its logits hook, the fast path through
``fast_variants.VariantRollout``'s banned ids), 10 flow steps, 1 sample, the same inputs and noise for every
backend. Backends:

* ``eager``: ``rollout.run_rollout`` (transformers modules, DynamicCache), greedy; few runs (it is the reference).
* ``fast-bf16``: ``model.fast.FastRollout``, greedy: static KV, one CUDA graph per decode step, one for the flow.
* ``fast-bf16-sdpa``: the same with one SDPA call (memory-efficient kernel) for the attention over the cache
  instead of the default batched GEMMs.
* ``fast-fp8``: FP8 (e4m3, per-row scales) decoder linears for the decode, greedy; agreement vs fast-bf16.
* ``fast-bf16-topp``: fast-bf16 with temperature 0.6 / top-p 0.98 sampling inside the graph (Gumbel-max).

Stage p50/p90/p99 over ``--runs`` runs after ``--warmup`` (eager: ``--eager-runs``); decode per token = decode ms /
39 (40 tokens, the first from the prefill logits: 39 decode steps). Rooflines per stage from the architecture and
two rates measured here (device copy bandwidth counting read + write; bf16 8192^3 matmul): vision / prefill =
matmul FLOPs / rate; decode = bytes read per token (decoder weights + lm_head + KV) / bandwidth; flow step = max(
expert weights + prefix KV bytes / bandwidth, FLOPs / rate). Each part is guarded (a failure prints and the rest
still runs); ``--time-budget-s`` skips the later parts when time runs short.

    python scripts/bench_fast_path.py --json out.json            # GPU (carry .whl/ for transformers 4.57.1)
    python scripts/bench_fast_path.py --cpu-smoke                # CPU: tiny preset, no graphs, 2 runs each
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import gpu_check_model as gcm  # noqa: E402  (stdlib-only at import; gives the transformers-wheel import helper)

STAGES = ("preprocess", "vision", "prefill", "decode", "action", "total")
REASONING_TOKENS, FLOW_STEPS = 40, 10
MARKER, EOS, PAD, TRAJ_START, HIST = 155681, (151645, 151643), 151643, 151669, 155684


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def build(cpu: bool) -> tuple[Any, Any, Any, Any]:
    """(model, inputs on the device, tokens, noise) as gpu_check_model's baseline builds them."""
    import torch

    from alpamayo_ros.model.generation import DecodeTokens
    from alpamayo_ros.model.loader import build_meta_model
    from alpamayo_ros.model.presets import r1_full_config, tiny_config
    from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids
    from alpamayo_ros.model.rollout import RolloutInputs
    from alpamayo_ros.model.tokenizer import add_alpamayo_tokens, build_qwen3vl_tokenizer

    device = "cpu" if cpu else "cuda"
    dtype = torch.float32 if cpu else torch.bfloat16
    model = build_meta_model(tiny_config() if cpu else r1_full_config(), dtype)
    model.to_empty(device=device)
    gcm._randomize(model, seed=0)
    model.eval().requires_grad_(False)
    tok = add_alpamayo_tokens(build_qwen3vl_tokenizer())
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 320, 576), generator=gen, dtype=torch.uint8)
    proc = preprocess_images(images, ImageProcessorConfig())
    ids = prompt_ids(tok, proc.image_grid_thw, 2)
    t = torch.arange(-15, 1, dtype=torch.float32) * 0.1
    inputs = RolloutInputs(
        ids,
        proc.pixel_values.to(device),  # on the device for every backend: no 70 MB upload inside the timings
        proc.image_grid_thw,
        torch.stack([10 * t, 0 * t, 0 * t], -1)[None],
        torch.eye(3).expand(1, 16, 3, 3).contiguous(),
    )
    tokens = DecodeTokens(TRAJ_START, 4000, MARKER, PAD, EOS, HIST)
    noise = torch.randn(1, 64, 2, generator=torch.Generator().manual_seed(1))
    return model, inputs, tokens, noise


def measure_rates(cpu: bool) -> dict[str, float]:
    import torch

    device = "cpu" if cpu else "cuda"
    n_copy, n_mm = (1 << 24, 1024) if cpu else (1 << 30, 8192)
    src = torch.randn(n_copy // 4, device=device)
    dst = torch.empty_like(src)
    a = torch.randn(n_mm, n_mm, device=device, dtype=torch.float32 if cpu else torch.bfloat16)

    def best(fn: Callable[[], Any], reps: int = 10) -> float:
        fn()
        times = []
        for _ in range(reps):
            if not cpu:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if not cpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    copy_s = best(lambda: dst.copy_(src))
    mm_s = best(lambda: a @ a, reps=5)
    return {"copy_gb_s": 2 * n_copy / copy_s / 1e9, "matmul_tflop_s": 2 * n_mm**3 / mm_s / 1e12}


def rooflines(model: Any, prompt_len: int, rates: dict[str, float]) -> dict[str, float]:
    """Floors in ms per stage from parameter counts and the measured rates (bf16 = 2 bytes per value)."""
    from torch import nn

    def linear_values(module: nn.Module) -> int:
        return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))

    lm, expert = model.language_model, model.expert
    bw, rate = rates["copy_gb_s"] * 1e9, rates["matmul_tflop_s"] * 1e12
    cfg, ecfg, vcfg = lm.config, expert.config, model.vlm.config.vision_config
    layers, kv, hd = int(cfg.num_hidden_layers), int(cfg.num_key_value_heads), int(cfg.head_dim)
    lm_linear = linear_values(lm.layers)
    lm_layer_bytes = 2 * sum(p.numel() for p in lm.layers.parameters())
    head = model.vlm.lm_head.weight.numel()
    hidden, q_heads = int(cfg.hidden_size), int(cfg.num_attention_heads)
    kv_bytes_per_token = layers * 2 * kv * hd * 2
    avg_ctx = prompt_len + REASONING_TOKENS / 2
    decode_bytes = lm_layer_bytes + 2 * head + 2 * hidden + kv_bytes_per_token * avg_ctx
    decode_fp8_bytes = decode_bytes - lm_linear  # linears at 1 byte
    prefill_flops = 2 * lm_linear * prompt_len + 2 * head * hidden + layers * 2 * q_heads * hd * prompt_len**2
    visual = model.vlm.model.visual
    patches = 16 * 720
    vis_linear = linear_values(visual.blocks)
    merge_tokens = patches // 4
    mergers = linear_values(visual.merger) + linear_values(visual.deepstack_merger_list)
    vision_flops = (
        2 * vis_linear * patches
        + int(vcfg.depth) * 16 * 4 * 720**2 * int(vcfg.hidden_size)
        + 2 * mergers * merge_tokens
        + 2 * visual.patch_embed.proj.weight.numel() * patches
    )
    expert_values = linear_values(expert.layers)
    ctx = prompt_len + REASONING_TOKENS
    e_layers, e_heads, e_hd = int(ecfg.num_hidden_layers), int(ecfg.num_attention_heads), int(ecfg.head_dim)
    step_bytes = 2 * expert_values + kv_bytes_per_token * ctx
    step_flops = 2 * expert_values * 64 + e_layers * 4 * e_heads * e_hd * 64 * (ctx + 64)
    step_ms = max(step_bytes / bw, step_flops / rate) * 1e3
    out = {
        "vision": vision_flops / rate * 1e3,
        "prefill": prefill_flops / rate * 1e3,
        "decode_per_token": decode_bytes / bw * 1e3,
        "decode_per_token_fp8": decode_fp8_bytes / bw * 1e3,
        "flow_step": step_ms,
        "action": FLOW_STEPS * step_ms,
        "decode_gb_per_token": decode_bytes / 1e9,
        "prefill_tflop": prefill_flops / 1e12,
        "vision_tflop": vision_flops / 1e12,
    }
    out["decode"] = out["decode_per_token"] * (REASONING_TOKENS - 1)
    out["total"] = out["vision"] + out["prefill"] + out["decode"] + out["action"]
    out["total_fp8"] = out["total"] - out["decode"] + out["decode_per_token_fp8"] * (REASONING_TOKENS - 1)
    return out


def timed_runs(call: Callable[[], Any], runs: int, warmup: int, cuda: bool) -> tuple[dict[str, list[float]], Any]:
    import torch

    laps: dict[str, list[float]] = {s: [] for s in STAGES}
    result = None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + runs):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = call()
        if cuda:
            torch.cuda.synchronize()
        total = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            for stage in STAGES[:-1]:
                laps[stage].append(result.timings_ms.get(stage, 0.0))
            laps["total"].append(total)
    return laps, result


def summarize(name: str, laps: dict[str, list[float]], cuda: bool, extra: dict[str, Any]) -> dict[str, Any]:
    import torch

    row: dict[str, Any] = {"backend": name, "runs": len(laps["total"]), **extra}
    for stage, values in laps.items():
        row[stage] = {"p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99)}
    row["decode_per_token"] = {k: v / (REASONING_TOKENS - 1) for k, v in row["decode"].items()}
    row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return row


def compare(a: Any, b: Any) -> dict[str, Any]:
    ta, tb = a.reasoning.tokens.cpu(), b.reasoning.tokens.cpu()
    same = ta.shape == tb.shape and bool((ta == tb).all())
    n = min(ta.shape[1], tb.shape[1])
    eq = (ta[:, :n] == tb[:, :n]).flatten()
    diverge = int((~eq).nonzero()[0]) if not bool(eq.all()) else -1
    return {
        "tokens_identical": same,
        "token_agreement": float(eq.float().mean()),
        "first_divergence": diverge,
        "max_abs_pred_xyz_diff_m": float((a.pred_xyz.float() - b.pred_xyz.float()).abs().max()),
        "max_abs_action_diff": float((a.sampled_action.float() - b.sampled_action.float()).abs().max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny preset on CPU, no graphs, 2 runs")
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--eager-runs", type=int, default=3)
    parser.add_argument("--topp-runs", type=int, default=20)
    parser.add_argument("--no-fp8", action="store_true")
    parser.add_argument("--time-budget-s", type=float, default=200.0, help="skip later parts past this")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    source = gcm._prepare_imports(args.wheels if args.wheels.is_dir() else None)
    import torch
    import transformers
    from fast_variants import VariantRollout

    from alpamayo_ros.model.fast import FastOptions
    from alpamayo_ros.model.generation import SamplingConfig
    from alpamayo_ros.model.rollout import RolloutSettings, run_rollout

    cpu = args.cpu_smoke
    if not cpu and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available (use --cpu-smoke for a dry run)")
    if cpu:
        args.runs, args.warmup, args.eager_runs, args.topp_runs = 2, 1, 1, 1
        torch.set_num_threads(1)
    cuda = not cpu
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": f"{transformers.__version__} ({source})",
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "backends": [],
        "errors": [],
    }
    print(f"torch {torch.__version__}, transformers {transformers.__version__} ({source}); {report['device']}")

    def elapsed() -> float:
        return time.perf_counter() - started

    def guarded(name: str, fn: Callable[[], Any]) -> Any:
        if elapsed() > args.time_budget_s:
            print(f"[skip] {name}: time budget {args.time_budget_s:.0f} s spent ({elapsed():.0f} s)")
            report["errors"].append(f"{name}: skipped (time budget)")
            return None
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as exc:  # report and go on: one failure must not hide the other figures
            traceback.print_exc()
            report["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"[FAIL] {name} after {time.perf_counter() - t0:.1f} s")
            return None
        print(f"[ok] {name}: {time.perf_counter() - t0:.1f} s (elapsed {elapsed():.0f} s)", flush=True)
        return out

    t0 = time.perf_counter()
    model, inputs, tokens, noise = build(cpu)
    device = model.device
    noise = noise.to(device)
    report["build_s"] = time.perf_counter() - t0
    prompt_len = int(inputs.input_ids.shape[1])
    report["prompt_tokens"] = prompt_len
    report["params_billion"] = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"model {report['params_billion']:.2f} B values, prompt {prompt_len} tokens, build {report['build_s']:.1f} s")
    rates = guarded("rates", lambda: measure_rates(cpu)) or {"copy_gb_s": float("nan"), "matmul_tflop_s": float("nan")}
    report["rates"] = rates
    roof = guarded("rooflines", lambda: rooflines(model, prompt_len, rates)) or {}
    report["roofline_ms"] = roof

    banned = (MARKER, *EOS)
    greedy = RolloutSettings(SamplingConfig(max_new_tokens=REASONING_TOKENS, greedy=True), flow_steps=FLOW_STEPS)
    topp = RolloutSettings(
        SamplingConfig(max_new_tokens=REASONING_TOKENS, temperature=0.6, top_p=0.98), flow_steps=FLOW_STEPS
    )
    results: dict[str, Any] = {}

    def force_length(step: int, logits: torch.Tensor) -> None:
        logits[:, list(banned)] = float("-inf")

    def eager() -> dict[str, Any]:
        laps, res = timed_runs(
            lambda: run_rollout(model, inputs, greedy, tokens, noise=noise, on_logits=force_length),
            args.eager_runs,
            1,
            cuda,
        )
        results["eager"] = res
        return summarize("eager", laps, cuda, {})

    def fast(name: str, settings: RolloutSettings, runs: int, **variant: Any) -> dict[str, Any]:
        t_setup = time.perf_counter()
        options = FastOptions(fp8_decode=variant.pop("fp8", False))
        runner = VariantRollout(model, tokens, options, banned=banned, **variant)
        setup_s = time.perf_counter() - t_setup
        gen = torch.Generator(device=device)

        def call() -> Any:
            gen.manual_seed(0)
            return runner(inputs, settings, generator=gen, noise=noise)

        t_first = time.perf_counter()
        call()  # allocates the static buffers and captures the graphs
        first_s = time.perf_counter() - t_first
        laps, res = timed_runs(call, runs, args.warmup, cuda)
        results[name] = res
        if runner._plan is not None:  # the last step's masked logits (parity of the decode numerics)
            results[name + ":logits"] = runner._plan.decoder.logits.clone()
        info = runner.info
        extra = {
            "setup_s": setup_s,
            "first_call_s": first_s,
            "capture_ms": info.capture_ms,
            "graphs": info.graphs,
            "fp8_mode": info.fp8_mode,
            "fp8_note": info.fp8_note,
            "tokens": int(res.reasoning.tokens.shape[1]),
            "notes": info.notes,
        }
        if cuda:
            torch.cuda.empty_cache()
        return summarize(name, laps, cuda, extra)

    plans: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("fast-bf16", lambda: fast("fast-bf16", greedy, args.runs)),
        ("eager", eager),
        ("fast-bf16-sdpa", lambda: fast("fast-bf16-sdpa", greedy, args.topp_runs, attention="sdpa")),
    ]
    if not args.no_fp8:
        plans.append(("fast-fp8", lambda: fast("fast-fp8", greedy, args.runs, fp8=True)))
    plans.append(("fast-bf16-topp", lambda: fast("fast-bf16-topp", topp, args.topp_runs)))

    def save() -> None:  # after every part: a later timeout or crash keeps what was measured
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2, default=str))

    for name, fn in plans:
        row = guarded(name, fn)
        if row is None and name == "fast-bf16":  # no graphs at all: still measure the static path and parity
            row = guarded("fast-bf16-nograph", lambda: fast("fast-bf16", greedy, 10, graphs=False))
            if row is not None:
                row["backend"] = "fast-bf16-nograph"
        if row is not None:
            report["backends"].append(row)
            p50 = {k: round(row[k]["p50"], 2) for k in ("vision", "prefill", "decode_per_token", "action", "total")}
            print(f"  {row['backend']} p50 ms {p50}, peak {row['peak_mem_gib']:.1f} GiB, notes {row.get('notes')}")
        save()

    checks: dict[str, Any] = {}
    if "eager" in results and "fast-bf16" in results:
        checks["fast_bf16_vs_eager"] = guarded(
            "agreement eager", lambda: compare(results["fast-bf16"], results["eager"])
        )
    if "fast-fp8" in results and "fast-bf16" in results:
        checks["fast_fp8_vs_fast_bf16"] = guarded(
            "agreement fp8", lambda: compare(results["fast-fp8"], results["fast-bf16"])
        )
    if "fast-fp8:logits" in results and "fast-bf16:logits" in results:

        def logits_diff() -> dict[str, float]:
            a, b = results["fast-fp8:logits"], results["fast-bf16:logits"]
            finite = torch.isfinite(a) & torch.isfinite(b)
            d = (a - b)[finite]
            return {
                "last_step_logits_max_abs_diff": float(d.abs().max()),
                "last_step_logits_rel_l2": float(d.norm() / b[finite].norm()),
                "last_step_logits_max_abs": float(b[finite].abs().max()),
            }

        checks["fast_fp8_vs_fast_bf16_logits"] = guarded("fp8 logits", logits_diff)
    if "fast-bf16-sdpa" in results and "eager" in results:
        checks["fast_sdpa_vs_eager"] = guarded(
            "agreement sdpa", lambda: compare(results["fast-bf16-sdpa"], results["eager"])
        )
    if "fast-fp8" in results and "eager" in results:
        checks["fast_fp8_vs_eager"] = guarded(
            "agreement fp8 eager", lambda: compare(results["fast-fp8"], results["eager"])
        )
    if "fast-bf16-topp" in results:
        toks = results["fast-bf16-topp"].reasoning.tokens
        checks["topp_tokens"] = int(toks.shape[1])
        checks["topp_no_traj_or_banned"] = not bool(
            (
                ((toks >= TRAJ_START) & (toks < TRAJ_START + 4000))
                | torch.isin(toks, torch.tensor(banned, device=toks.device))
            ).any()
        )
    report["checks"] = checks

    print_table(report)
    report["elapsed_s"] = elapsed()
    save()
    print(f"elapsed {report['elapsed_s']:.0f} s; errors: {report['errors'] or 'none'}")
    return 1 if report["errors"] else 0


def print_table(report: dict[str, Any]) -> None:
    roof = report.get("roofline_ms", {})
    rates = report.get("rates", {})
    print(
        f"\n{report['device']}: copy {rates.get('copy_gb_s', float('nan')):.0f} GB/s (read+write), "
        f"bf16 matmul {rates.get('matmul_tflop_s', float('nan')):.0f} TFLOP/s; prompt {report.get('prompt_tokens')} "
        f"tokens, {REASONING_TOKENS} reasoning tokens, {FLOW_STEPS} flow steps"
    )
    rows = {r["backend"]: r for r in report["backends"]}
    eager = rows.get("eager")
    stages = ("vision", "prefill", "decode_per_token", "decode", "action", "total")
    print(f"{'backend':16} {'stage':17} {'p50':>9} {'p90':>9} {'p99':>9} {'roof':>8} {'x roof':>7} {'vs eager':>8}")
    for name, row in rows.items():
        for stage in stages:
            p = row[stage]
            r = roof.get(stage, float("nan"))
            if name == "fast-fp8" and stage in ("decode_per_token", "decode", "total"):
                r = (
                    roof.get(f"{stage}_fp8", r)
                    if stage != "decode"
                    else roof.get("decode_per_token_fp8", r) * (REASONING_TOKENS - 1)
                )
            speed = eager[stage]["p50"] / p["p50"] if eager and p["p50"] > 0 else float("nan")
            print(
                f"{name:16} {stage:17} {p['p50']:9.2f} {p['p90']:9.2f} {p['p99']:9.2f} {r:8.2f} "
                f"{p['p50'] / r if math.isfinite(r) and r > 0 else float('nan'):7.2f} {speed:8.2f}"
            )
        keys = ("runs", "peak_mem_gib", "capture_ms", "first_call_s", "graphs", "fp8_mode", "fp8_note", "notes")
        extra = {k: row[k] for k in keys if k in row}
        print(f"{'':16} {extra}")
    for name, check in report.get("checks", {}).items():
        print(f"check {name}: {check}")


if __name__ == "__main__":
    sys.exit(main())
