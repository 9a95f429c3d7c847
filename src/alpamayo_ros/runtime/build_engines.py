"""`alpamayo-ros build-engines`: export the ONNX graphs, verify them, build TensorRT engines, exit.

The build-only step of a deployment: run once per model, GPU and shape set (the node's tensorrt backend then finds
valid engines in the cache and starts without building). Steps:

1. load the model in float32 on the CPU (exports are traced there; weights are the checkpoint's),
2. export the vision encoder and the expert step for the deployment's static shapes (images x grid, prefix
   capacity = prompt + reasoning budget, samples) and check each against PyTorch with onnxruntime (CPU),
3. with TensorRT and a GPU: build (or reuse, after hash and I/O validation) one engine per graph at the requested
   precision, under ``<out>/engines``; without TensorRT: say so and exit 3, because no engine was built
   (``--export-only`` asks for the exports alone and exits 0).

fp8 for the expert sets TensorRT's FP8 flag, but the exported graph has no Q/DQ nodes, so TensorRT keeps the
layers in bf16: real FP8 needs a quantized (ModelOpt-style) export, which this command does not produce yet.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

EXIT_NO_TENSORRT = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help="checkpoint directory or preset name (tiny)")
    parser.add_argument("--tokenizer", default="", help="base VLM tokenizer/processor directory ('' = built offline)")
    parser.add_argument("--out", required=True, type=Path, help="output directory (ONNX + manifest; engines/ below)")
    parser.add_argument("--precision-vision", default="bf16", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--precision-expert", default="bf16", choices=("fp32", "fp16", "bf16", "fp8"))
    parser.add_argument("--export-only", action="store_true", help="export and verify ONNX; do not build engines")
    parser.add_argument("--camera-size", default="1080x1920", help="raw camera frame size HxW (sets the image grid)")
    parser.add_argument("--max-reasoning-tokens", type=int, default=128, help="reasoning budget (prefix capacity)")
    parser.add_argument("--num-samples", type=int, default=1, help="trajectory samples per input (expert rows)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a preset's random weights")
    parser.add_argument("--force", action="store_true", help="re-export even when valid exports exist")


def _camera_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--camera-size must look like 1080x1920, got {text!r}") from None
    return h, w


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from alpamayo_ros.core.model_spec import ModelSpec
    from alpamayo_ros.runtime import onnx_export as ox
    from alpamayo_ros.runtime.accelerated import PRECISIONS_FILE, deployment_for
    from alpamayo_ros.runtime.torch_backend import load_torch_model

    def say(message: str) -> None:
        print(f"[build-engines] {message}", flush=True)

    started = time.monotonic()
    out: Path = args.out.expanduser()
    spec = ModelSpec(
        backend="torch",
        model_path=args.model,
        tokenizer_path=args.tokenizer,
        device="cpu",
        dtype="float32",
        max_reasoning_tokens=args.max_reasoning_tokens,
        num_samples=args.num_samples,
        seed=args.seed,
    )
    say(f"loading {args.model} (float32, CPU) for export")
    driving = load_torch_model(spec)
    model = driving.model
    assert model is not None
    deployment = deployment_for(driving, _camera_size(args.camera_size))
    say(
        f"deployment: {deployment.num_images} images of grid {deployment.image_grid_thw}, prefix capacity "
        f"{deployment.prefix_capacity}, {deployment.num_samples} sample(s); model {driving.info.version}"
    )
    with torch.inference_mode(False), torch.no_grad():
        if args.force:
            manifest = ox.export_all(model, deployment, out, model_fingerprint=driving.info.version, log=say)
        else:
            manifest = ox.ensure_exports(deployment, out, driving.info.version, lambda: model, say)
    for name, sub in manifest.subnets.items():
        errors = ", ".join(f"{k} {v:.1e}" for k, v in sub.max_abs_error.items())
        say(f"{name}: {sub.file} sha256 {sub.onnx_sha256[:12]}; onnxruntime vs PyTorch max |err|: {errors or 'n/a'}")
    precisions = {ox.VISION: args.precision_vision, ox.EXPERT: args.precision_expert}
    (out / PRECISIONS_FILE).write_text(json.dumps(precisions, indent=2) + "\n")
    if args.export_only:
        say(f"export only: ONNX and {ox.EXPORT_MANIFEST} in {out} ({time.monotonic() - started:.0f} s)")
        return 0

    from alpamayo_ros.runtime.engine_cache import EngineCache
    from alpamayo_ros.runtime.tensorrt_engines import TensorRTUnavailableError, ensure_engine

    try:
        from alpamayo_ros.runtime.accelerated import require_tensorrt

        require_tensorrt()
    except TensorRTUnavailableError as exc:
        say(f"no engines built: {exc}")
        say(f"the verified ONNX exports are in {out}; run this command again where TensorRT >= 10 and a GPU exist")
        print(f"build-engines: TensorRT engines need TensorRT; exported ONNX only ({exc})", file=sys.stderr)
        return EXIT_NO_TENSORRT
    if args.precision_expert == "fp8":
        say("expert fp8: the export has no Q/DQ nodes, so TensorRT will keep its layers in bf16 (see --help)")
    cache = EngineCache(out / "engines")
    for name, sub in manifest.subnets.items():
        ensure_engine(
            cache,
            subnet=name,
            onnx_path=out / sub.file,
            precision=precisions[name],
            inputs=sub.inputs,
            outputs=sub.outputs,
            log=say,
        )
    say(f"engines ready in {cache.root} ({time.monotonic() - started:.0f} s); exiting (build-only)")
    return 0
