#!/usr/bin/env python3
"""GPU check of the Alpamayo-R1 PyTorch implementation: fixture parity on the device, full-size eager baseline.

Part 1 (parity): checkpoint ``official_tiny_a`` on the device, once in float32 (TF32 off; tolerances close to the
CPU ones: GPU kernels only reorder sums) and once in bfloat16 (loose tolerances: bf16 keeps 8 mantissa bits, so
logits of |x| <= 5 move by ~1e-2; greedy tokens may flip where the golden top-2 margin is small, and a different
reasoning changes the expert's context, so bf16 token agreement and waypoints are reported, not required).

Part 2 (baseline): the full-size R1 architecture (Qwen3-VL-8B + 2.3B expert, 11.08 B values) with random bf16
weights; 16 images at 320x576 (2880 visual tokens), 48 history tokens, exactly 40 reasoning tokens (eos and
``<|traj_future_start|>`` masked), 10 flow steps, 1 sample, eager PyTorch + SDPA; median of ``--repeats`` runs after
one warm-up; vision / prefill / decode (ms/token) / action / total ms and peak memory.

Runs without network. It needs transformers 4.57.1 (the pinned version): if the interpreter has another one, the
wheels in ``--wheels`` (default: the repo's git-ignored ``.whl/``, holding transformers 4.57.1, tokenizers 0.22.2,
huggingface_hub 0.36.2 and the pure-Python ``requests`` stack huggingface_hub 0.x imports) are unpacked to a temp dir
and put first on ``sys.path``.

``--cpu-smoke`` runs both parts on CPU with the tiny architecture in place of the full one (for a dry run).

Usage on the device: ``python scripts/gpu_check_model.py --fixtures shared_fixtures/official_tiny_a``
(carry ``.whl`` along). Exit code 1 when a required parity check fails.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import json
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRANSFORMERS_PIN = "4.57.1"


def _prepare_imports(wheels: Path | None, force_wheels: bool = False) -> str:
    """Make ``import transformers`` give the pinned version; returns where it came from."""
    try:
        installed = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        installed = ""
    if installed == TRANSFORMERS_PIN and not force_wheels:
        source = f"installed transformers {installed}"
    else:
        if wheels is None or not any(wheels.glob("transformers-*.whl")):
            raise SystemExit(
                f"transformers {installed or '(none)'} found, {TRANSFORMERS_PIN} needed and no wheels in {wheels}; "
                "carry .whl/ (transformers, tokenizers, huggingface_hub wheels) or pass --wheels DIR"
            )
        target = Path(tempfile.mkdtemp(prefix="alpamayo_site_"))
        atexit.register(shutil.rmtree, target, ignore_errors=True)
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(target)
        sys.path.insert(0, str(target))
        importlib.invalidate_caches()
        source = f"wheels from {wheels} (installed: {installed or 'none'})"
    sys.path.insert(0, str(REPO / "src"))
    return source


# -- part 1: parity -------------------------------------------------------------------------------------------------
def _max_diff(a: Any, b: Any) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    finite = np.isfinite(b)
    return float(np.abs(a[finite] - b[finite]).max()) if finite.any() else 0.0


# (quantity, float32 tolerance, bfloat16 tolerance, bfloat16 required?)
PARITY_TOLERANCES: dict[str, tuple[float, float, bool]] = {
    "image_embeds": (1e-3, 0.25, True),  # bf16: ~0.4% of values up to ~10
    "deepstack": (1e-3, 0.25, True),
    "prefill_logits": (1e-3, 0.25, True),  # |logit| <= 5
    "kv_cache_layer0_keys": (1e-3, 0.25, False),  # differs in bf16 once a greedy token flips
    "greedy_tokens_mismatch": (0, 24, False),  # count of the 24 golden tokens not reproduced
    "pred_xyz_m": (1e-3, 2.0, False),
    "pred_rot": (1e-4, 0.1, False),
}


def parity(fixtures: Path, device: str, dtype_name: str) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig
    from alpamayo_ros.model.loader import load_checkpoint
    from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids
    from alpamayo_ros.model.rollout import RolloutInputs, RolloutSettings, run_rollout
    from alpamayo_ros.model.tokenizer import load_tokenizer, token_ids

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    golden = fixtures / "golden"
    g: dict[str, dict[str, Any]] = {}
    for name in ("inputs", "prefill", "decode", "expert", "prompt_kv_cache"):
        with np.load(golden / f"{name}.npz") as data:
            g[name] = {k: data[k] for k in data.files}
    model, _ = load_checkpoint(fixtures, device, dtype)
    tok = load_tokenizer(fixtures / "processor")
    ids = token_ids(tok)
    tokens = DecodeTokens(
        ids.traj_start, ids.traj_vocab_size, ids.traj_future_start, ids.pad, (ids.im_end, ids.pad), ids.traj_history
    )
    images = torch.from_numpy(g["inputs"]["images_uint8"][0].reshape(16, 3, 320, 576))
    proc = preprocess_images(images, ImageProcessorConfig())
    inputs = RolloutInputs(
        prompt_ids(tok, proc.image_grid_thw, 2),
        proc.pixel_values,
        proc.image_grid_thw,
        torch.from_numpy(g["inputs"]["ego_history_xyz"][:, 0]),
        torch.from_numpy(g["inputs"]["ego_history_rot"][:, 0]),
    )
    result = run_rollout(
        model,
        inputs,
        RolloutSettings(SamplingConfig(max_new_tokens=24, greedy=True), num_samples=1),
        tokens,
        noise=torch.from_numpy(g["expert"]["initial_noise"]),
        keep_intermediates=True,
    )
    assert result.vision is not None and result.prefill_logits is not None and result.expert_context is not None
    generated = result.reasoning.tokens.cpu().numpy()
    measured = {
        "image_embeds": _max_diff(result.vision.image_embeds.float().cpu(), g["prefill"]["image_embeds"]),
        "deepstack": _max_diff(
            torch.stack(result.vision.deepstack).float().cpu(), g["prefill"]["deepstack_image_embeds"]
        ),
        "prefill_logits": _max_diff(result.prefill_logits.cpu(), g["prefill"]["last_position_logits"]),
        "kv_cache_layer0_keys": _max_diff(
            result.expert_context.cache.layers[0].keys.float().cpu(), g["prompt_kv_cache"]["layer0_keys"]
        ),
        "greedy_tokens_mismatch": float((generated != g["decode"]["generated_ids"]).sum()),
        "pred_xyz_m": _max_diff(result.pred_xyz.cpu(), g["expert"]["pred_xyz"][:, 0]),
        "pred_rot": _max_diff(result.pred_rot.cpu(), g["expert"]["pred_rot"][:, 0]),
    }
    rows = []
    for name, value in measured.items():
        tol32, tol16, required16 = PARITY_TOLERANCES[name]
        tol = tol32 if dtype == torch.float32 else tol16
        required = dtype == torch.float32 or required16
        rows.append(
            {
                "dtype": dtype_name,
                "quantity": name,
                "max_abs_diff": value,
                "tol": tol,
                "ok": value <= tol,
                "required": required,
            }
        )
    return rows


def backend_smoke(fixtures: Path, device: str) -> dict[str, Any]:
    """The node-facing wrapper on the device: official checkpoint, sampling, 2 samples, 1080x1920 camera frames."""
    import numpy as np

    from alpamayo_ros.core.model_spec import ModelSpec
    from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC
    from alpamayo_ros.core.types import EgoHistory, ModelInput
    from alpamayo_ros.runtime.torch_backend import load_torch_model

    spec = ModelSpec(
        model_path=str(fixtures),
        tokenizer_path=str(fixtures / "processor"),
        device=device,
        num_samples=2,
        max_reasoning_tokens=8,
    )
    model = load_torch_model(spec)
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 256, (4, 1080, 1920, 3), dtype=np.uint8) for cam in ALPAMAYO_R1_CAMERAS}
    t = np.arange(-15, 1) * 0.1
    hist = EgoHistory(np.stack([10 * t, 0 * t, 0 * t], -1), np.repeat(np.eye(3)[None], 16, 0), t)
    sample = ModelInput(1, images, ALPAMAYO_R1_FRAME_OFFSETS_SEC, hist)
    first = model.predict(sample)
    again = model.predict(sample)
    model.close()
    return {
        "shapes_ok": first.xyz.shape == (2, 64, 3) and first.rotation.shape == (2, 64, 3, 3),
        "finite": bool(np.isfinite(first.xyz).all()),
        "reproducible": bool(np.array_equal(first.xyz, again.xyz)),
        "total_ms": again.timings.total_ms,
    }


# -- part 2: baseline -----------------------------------------------------------------------------------------------
def _randomize(model: Any, seed: int) -> None:
    """Random weights with sane scales on the model's device: norm weights 1, biases 0, matrices N(0, 0.02)."""
    import math

    import torch

    from alpamayo_ros.model.loader import materialize_non_persistent

    gen = torch.Generator(device=model.device).manual_seed(seed)
    with torch.no_grad():
        norms = set()
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith("RMSNorm"):
                norms.add(id(module.weight))
        for param in model.parameters():
            if id(param) in norms:
                param.fill_(1.0)
            elif param.ndim == 1:
                param.zero_()
            else:
                param.normal_(0.0, 0.02, generator=gen)
        space = model.cfg.action_space
        model.action_space.accel_mean.fill_(space.accel_mean)
        model.action_space.accel_std.fill_(space.accel_std)
        model.action_space.curvature_mean.fill_(space.curvature_mean)
        model.action_space.curvature_std.fill_(space.curvature_std)
        proj = model.action_in_proj
        for fourier in [*proj.sinus, proj.timestep_fourier_encoder]:
            n = fourier.freqs.shape[-1]
            freqs = torch.logspace(0.0, math.log10(model.cfg.action_in_proj.max_freq), n, device=model.device)
            fourier.freqs.copy_(freqs[None])
    materialize_non_persistent(model, model.device)
    model.tie_embeddings()


def baseline(
    device: str, full: bool, repeats: int, fixtures: Path | None, reasoning_tokens: int = 40
) -> dict[str, Any]:
    import torch

    from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig
    from alpamayo_ros.model.loader import build_meta_model
    from alpamayo_ros.model.presets import r1_full_config, tiny_config
    from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids
    from alpamayo_ros.model.rollout import RolloutInputs, RolloutSettings, run_rollout
    from alpamayo_ros.model.tokenizer import add_alpamayo_tokens, build_qwen3vl_tokenizer, load_tokenizer

    cfg = r1_full_config() if full else tiny_config()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    started = time.perf_counter()
    model = build_meta_model(cfg, dtype)
    model.to_empty(device=device)
    _randomize(model, seed=0)
    model.eval().requires_grad_(False)
    build_s = time.perf_counter() - started

    tokenizer_dir = fixtures / "processor" if fixtures else None
    tok = load_tokenizer(tokenizer_dir) if tokenizer_dir else add_alpamayo_tokens(build_qwen3vl_tokenizer())
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 320, 576), generator=gen, dtype=torch.uint8)
    proc = preprocess_images(images, ImageProcessorConfig())
    ids = prompt_ids(tok, proc.image_grid_thw, 2)
    t = torch.arange(-15, 1, dtype=torch.float32) * 0.1
    inputs = RolloutInputs(
        ids,
        proc.pixel_values,
        proc.image_grid_thw,
        torch.stack([10 * t, 0 * t, 0 * t], -1)[None],
        torch.eye(3).expand(1, 16, 3, 3),
    )
    marker, eos = 155681, (151645, 151643)
    tokens = DecodeTokens(151669, 4000, marker, 151643, eos, 155684)

    def force_length(step: int, logits: torch.Tensor) -> None:
        logits[:, [marker, *eos]] = float("-inf")  # exactly `reasoning_tokens` tokens, whatever the weights say

    settings = RolloutSettings(
        SamplingConfig(max_new_tokens=reasoning_tokens, greedy=True), num_samples=1, flow_steps=10
    )
    runs = []
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for i in range(repeats + 1):
        begin = time.perf_counter()
        result = run_rollout(model, inputs, settings, tokens, on_logits=force_length)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        total = (time.perf_counter() - begin) * 1000.0
        if i > 0:  # the first run is the warm-up
            runs.append({**result.timings_ms, "total": total})
    assert result.reasoning.tokens.shape[1] == reasoning_tokens
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out = {
        "architecture": "R1 full size (random bf16)" if full else "tiny preset (CPU smoke)",
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "params_values_billion": sum(p.numel() for p in model.parameters()) / 1e9,
        "build_s": build_s,
        "prompt_tokens": int(ids.shape[1]),
        "reasoning_tokens": reasoning_tokens,
        "repeats": repeats,
        "vision_ms": med["vision"],
        "prefill_ms": med["prefill"],
        "decode_ms": med["decode"],
        "decode_ms_per_token": med["decode"] / (reasoning_tokens - 1),  # the last token is sampled, never fed
        "action_ms": med["action"],
        "action_ms_per_flow_step": med["action"] / 10,
        "preprocess_ms": med["preprocess"],
        "total_ms": med["total"],
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan"),
    }
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--fixtures", type=Path, help="official_tiny_a directory (config.json, model.safetensors, processor/, golden/)"
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="run on CPU with the tiny architecture for part 2")
    parser.add_argument(
        "--wheels", type=Path, default=REPO / ".whl", help="wheels to use when transformers is not 4.57.1"
    )
    parser.add_argument("--force-wheels", action="store_true", help="use --wheels even if transformers matches")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args()
    source = _prepare_imports(args.wheels if args.wheels.is_dir() else None, args.force_wheels)
    import torch

    try:
        import transformers
    except ImportError as exc:  # e.g. huggingface_hub 0.x needs `requests`, which transformers 5 setups may lack
        raise SystemExit(
            f"cannot import transformers ({exc}); add the missing package's wheel to {args.wheels}"
        ) from exc

    if args.fixtures is not None and args.fixtures.is_dir() and (args.fixtures / "official_tiny_a").is_dir():
        args.fixtures = args.fixtures / "official_tiny_a"
    device = "cpu" if args.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available (use --cpu-smoke for a dry run)")
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 parity means float32 matmuls
    torch.backends.cudnn.allow_tf32 = False
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__} from {transformers.__file__} ({source}), "
        f"python {sys.version.split()[0]}"
    )
    if device == "cuda":
        print(f"device: {torch.cuda.get_device_name(0)}")
    report: dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__}
    failed = False
    if not args.skip_parity:
        if args.fixtures is None:
            raise SystemExit("--fixtures DIR is required for the parity part (or pass --skip-parity)")
        rows = []
        for dtype_name in ("float32", "bfloat16"):
            started = time.perf_counter()
            rows += parity(args.fixtures, device, dtype_name)
            print(f"parity {dtype_name} on {device}: {time.perf_counter() - started:.1f} s")
        print(f"\n{'dtype':9} {'quantity':24} {'max |diff|':>12} {'tol':>9}  result")
        for row in rows:
            verdict = "ok" if row["ok"] else ("FAIL" if row["required"] else "over (info)")
            failed |= row["required"] and not row["ok"]
            print(f"{row['dtype']:9} {row['quantity']:24} {row['max_abs_diff']:12.3g} {row['tol']:9.3g}  {verdict}")
        report["parity"] = rows
        smoke = backend_smoke(args.fixtures, device)
        report["backend_smoke"] = smoke
        smoke_ok = smoke["shapes_ok"] and smoke["finite"] and smoke["reproducible"]
        failed |= not smoke_ok
        print(f"backend wrapper on {device} (2 samples, 1080x1920 frames): {'ok' if smoke_ok else 'FAIL'} {smoke}")
    if not args.skip_baseline:
        result = baseline(
            device, full=not args.cpu_smoke, repeats=1 if args.cpu_smoke else args.repeats, fixtures=args.fixtures
        )
        report["baseline"] = result
        print(
            f"\nbaseline: {result['architecture']} on {result['device']} ({result['dtype']}), "
            f"{result['params_values_billion']:.2f} B values, prompt {result['prompt_tokens']} tokens, "
            f"{result['reasoning_tokens']} reasoning tokens, median of {result['repeats']}"
        )
        print(f"{'stage':22} {'ms':>10}")
        for key in (
            "preprocess_ms",
            "vision_ms",
            "prefill_ms",
            "decode_ms",
            "decode_ms_per_token",
            "action_ms",
            "action_ms_per_flow_step",
            "total_ms",
        ):
            print(f"{key:22} {result[key]:10.1f}")
        print(f"{'peak_mem_gib':22} {result['peak_mem_gib']:10.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print("\nRESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
