"""`alpamayo-ros build-engines`: export the ONNX graphs, verify them, build TensorRT engines, exit.

The build-only step of a deployment: run once per model, GPU and shape set (the node's tensorrt backend then finds
valid engines in the cache and starts without building). Steps:

1. load the model in float32 on the CPU (exports are traced there; weights are the checkpoint's),
2. export the vision encoder and the expert step for the deployment's static shapes (images x grid, prefix
   capacity = prompt + reasoning budget, samples) in float32 and, for strongly typed engines, in the requested
   precision (``runtime/onnx/precision.py``), and check each against PyTorch float32 with onnxruntime (CPU),
3. with TensorRT and a GPU: build (or reuse, after hash and I/O validation) one engine per graph, under
   ``<out>/engines``, typed as ``tensorrt_build.plan_build`` decides for the installed TensorRT line (10.12+ or 11:
   strongly typed from the reduced-precision graph; ``--typing weak`` on 10.x: the float32 graph plus the legacy
   precision flag); without TensorRT: say so and exit 3, because no engine was built (``--export-only`` asks for
   the exports alone and exits 0).

fp8 is refused with a message: it needs a Q/DQ-quantized export, which this command does not produce yet.
A bad argument or a checkpoint that cannot be loaded (missing, corrupt config.json, weights not matching it) ends in
one line naming it and exit code 1, before anything is exported.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 1  # an argument or the checkpoint is unusable (2 and 3 are taken by build outcomes)
EXIT_NO_TENSORRT = 3
EXIT_UNSUPPORTED = 2
PRECISION_CHOICES = ("fp32", "fp16", "bf16", "fp8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help="checkpoint directory or preset name (tiny)")
    parser.add_argument("--tokenizer", default="", help="base VLM tokenizer/processor directory ('' = built offline)")
    parser.add_argument("--out", required=True, type=Path, help="output directory (ONNX + manifest; engines/ below)")
    parser.add_argument(
        "--precision", choices=PRECISION_CHOICES, help="engine precision of both graphs (default bf16; fp8: refused)"
    )
    parser.add_argument("--precision-vision", choices=PRECISION_CHOICES, help="vision precision (over --precision)")
    parser.add_argument("--precision-expert", choices=PRECISION_CHOICES, help="expert precision (over --precision)")
    parser.add_argument(
        "--typing",
        default="strong",
        choices=("strong", "weak"),
        help="TensorRT network typing: strong (10.12+ and 11; precision in the graph) or weak (legacy, 10.x only)",
    )
    parser.add_argument("--export-only", action="store_true", help="export and verify ONNX; do not build engines")
    parser.add_argument("--camera-size", default="1080x1920", help="raw camera frame size HxW (sets the image grid)")
    parser.add_argument("--max-reasoning-tokens", type=int, default=128, help="reasoning budget (prefix capacity)")
    parser.add_argument("--num-samples", type=int, default=1, help="trajectory samples per input (expert rows)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a preset's random weights")
    parser.add_argument("--force", action="store_true", help="re-export even when valid exports exist")


class UsageError(Exception):
    """An argument this command cannot use; the message names it and why (printed as one line, exit 1)."""


def _camera_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--camera-size must look like 1080x1920, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise UsageError(f"--camera-size {text}: both sides must be positive")
    return h, w


def _precisions(args: argparse.Namespace) -> dict[str, str]:
    """Engine precision per sub-network; fp8 is refused before anything is loaded."""
    from alpamayo_ros.runtime import onnx as ox

    both = args.precision or "bf16"
    chosen = {ox.VISION: args.precision_vision or both, ox.EXPERT: args.precision_expert or both}
    if "fp8" in chosen.values():
        raise UsageError(ox.FP8_NOT_OFFERED)
    return chosen


def _out_dir(path: Path) -> Path:
    out = path.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {path}: is a file, not a directory")
    return out


def run(args: argparse.Namespace) -> int:
    """The command; bad arguments and unusable checkpoints end in one line on stderr and exit 1, before any export."""
    try:
        return _build(args)
    except UsageError as exc:
        print(f"build-engines: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _build(args: argparse.Namespace) -> int:
    from alpamayo_ros.core.model_spec import ModelSpec

    out = _out_dir(args.out)
    choice_precisions, camera_size = _precisions(args), _camera_size(args.camera_size)
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
    problems = spec.problems()
    if problems:
        raise UsageError("; ".join(problems))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)  # progress; errors: stderr
    import torch

    from alpamayo_ros.model.loader import CheckpointError
    from alpamayo_ros.runtime import onnx as ox
    from alpamayo_ros.runtime.accelerated import deployment_for
    from alpamayo_ros.runtime.tensorrt_build import EngineChoice
    from alpamayo_ros.runtime.torch_backend import load_torch_model

    def say(message: str) -> None:
        print(f"[build-engines] {message}", flush=True)

    started = time.monotonic()
    choice = EngineChoice(choice_precisions, args.typing)
    say(f"loading {args.model} (float32, CPU) for export")
    try:
        driving = load_torch_model(spec)
    except (OSError, ValueError, CheckpointError) as exc:  # no checkpoint, config.json unreadable or invalid, ...
        raise UsageError(f"--model {args.model}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    model = driving.model
    assert model is not None
    deployment = deployment_for(driving, camera_size)
    say(
        f"deployment: {deployment.num_images} images of grid {deployment.image_grid_thw}, prefix capacity "
        f"{deployment.prefix_capacity}, {deployment.num_samples} sample(s); model {driving.info.version}"
    )
    graphs = choice.graph_precisions()
    with torch.inference_mode(False), torch.no_grad():
        if args.force:
            manifest = ox.export_all(
                model, deployment, out, model_fingerprint=driving.info.version, precisions=graphs, log=say
            )
        else:
            manifest = ox.ensure_exports(deployment, out, driving.info.version, lambda: model, say, precisions=graphs)
    for name, sub in manifest.subnets.items():
        errors = ", ".join(f"{k} {v:.1e}" for k, v in sub.max_abs_error.items())
        say(
            f"{name}: {sub.file} sha256 {sub.onnx_sha256[:12]}; vs float32 PyTorch ({sub.verified_with or 'n/a'}) "
            f"max |err|: {errors or 'n/a'}"
        )
    choice.write(out)
    if args.export_only:
        say(f"export only: ONNX and {ox.EXPORT_MANIFEST} in {out} ({time.monotonic() - started:.0f} s)")
        return 0

    from alpamayo_ros.runtime.accelerated import require_tensorrt
    from alpamayo_ros.runtime.tensorrt_build import TensorRTVersionError
    from alpamayo_ros.runtime.tensorrt_engines import TensorRTUnavailableError, ensure_engines

    try:
        require_tensorrt()
    except TensorRTUnavailableError as exc:
        say(f"no engines built: {exc}")
        say(f"the verified ONNX exports are in {out}; run this command again where TensorRT >= 10 and a GPU exist")
        print(f"build-engines: TensorRT engines need TensorRT; exported ONNX only ({exc})", file=sys.stderr)
        return EXIT_NO_TENSORRT
    try:
        engines = ensure_engines(out, manifest, choice.precisions, choice.typing, say)
    except TensorRTVersionError as exc:
        print(f"build-engines: {exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    say(f"engines ready ({', '.join(p.name for p in engines.values())}) in {time.monotonic() - started:.0f} s")
    return 0
