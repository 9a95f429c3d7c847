#!/usr/bin/env python3
"""fp32 vs fp16 ONNX graphs on onnxruntime's CPU provider: latency and parity per sub-network (a script, not a test).

For each model (``tiny`` preset, the shipped small driver ``default``): export the vision encoder and the expert
step for the model's deployment (1080x1920 cameras, reasoning budget 8, 1 sample) in float32 and fp16, then on the
same inputs time each graph (median of ``--runs`` after one warm-up, ``--threads`` intra-op threads) and compare
the fp16 outputs with the float32 graph's (max |err|, and relative to max |ref|). The expert is also integrated
over 10 Euler steps from the same noise with each graph (max |action diff|, normalised action units). onnxruntime's
CPU provider has few fp16 kernels and inserts casts around the rest, so CPU latency says little about a GPU; bf16
graphs are not run (no bfloat16 MatMul on the CPU provider).

    python scripts/bench_onnx_precision.py [--models tiny,default] [--runs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.runtime import onnx as ox
from alpamayo_ros.runtime.accelerated import deployment_for
from alpamayo_ros.runtime.torch_backend import load_torch_model

FLOW_STEPS = 10


def median_ms(session: Any, feed: dict[str, np.ndarray], runs: int) -> float:
    session.run(None, feed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def feed_for(session: Any, inputs: dict[str, torch.Tensor], manifest_inputs: Any) -> dict[str, np.ndarray]:
    """Inputs cast to the graph's declared input types (the fp16 expert takes fp16 K/V)."""
    dtypes = {s.name: getattr(torch, s.dtype) for s in manifest_inputs}
    return {i.name: inputs[i.name].to(dtypes[i.name]).numpy() for i in session.get_inputs()}


def integrate(session: Any, feed: dict[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
    x = noise
    for step in range(FLOW_STEPS):
        t = np.full_like(feed["t"], step / FLOW_STEPS)
        (velocity,) = session.run(["velocity"], {**feed, "x": x, "t": t})
        x = x + velocity / FLOW_STEPS
    return x


def bench_model(name: str, runs: int, threads: int, work: Path) -> None:
    torch.set_num_threads(max(threads, 1))
    spec = ModelSpec(backend="torch", model_path=name, device="cpu", dtype="float32", max_reasoning_tokens=8)
    driving = load_torch_model(spec)
    model = driving.model
    assert model is not None
    deployment = deployment_for(driving)
    out = work / name
    started = time.perf_counter()
    with torch.no_grad():
        manifest = ox.export_all(
            model, deployment, out, model_fingerprint=driving.info.version, precisions=("fp16",), log=lambda _: None
        )
    print(
        f"\n{name} ({driving.info.version}): {deployment.num_images} images of grid {deployment.image_grid_thw}, "
        f"prefix {deployment.prefix_capacity}; exported fp32 + fp16 in {time.perf_counter() - started:.0f} s"
    )
    print(f"{'graph':12} {'fp32 ms':>9} {'fp16 ms':>9} {'output':14} {'max|err|':>10} {'max|ref|':>10} {'rel':>9}")
    for subnet in ox.SUBNETS:
        inputs = ox.example_inputs(model, deployment, subnet)
        full, half = manifest.graph(subnet), manifest.graph(subnet, "fp16")
        s32 = ox.ort_session(out / full.file, threads=threads)
        s16 = ox.ort_session(out / half.file, threads=threads)
        f32, f16 = feed_for(s32, inputs, full.inputs), feed_for(s16, inputs, half.inputs)
        ms32, ms16 = median_ms(s32, f32, runs), median_ms(s16, f16, runs)
        names = [o.name for o in full.outputs]
        for i, (output, ref, got) in enumerate(zip(names, s32.run(names, f32), s16.run(names, f16), strict=True)):
            err = float(np.abs(ref - got.astype(np.float32)).max())
            scale = float(np.abs(ref).max())
            times = f"{ms32:9.1f} {ms16:9.1f}" if i == 0 else f"{'':9} {'':9}"
            print(f"{subnet if i == 0 else '':12} {times} {output:14} {err:10.2e} {scale:10.2e} {err / scale:9.2e}")
        if subnet == ox.EXPERT:
            noise = np.random.default_rng(0).standard_normal(f32["x"].shape).astype(np.float32)
            a32, a16 = integrate(s32, f32, noise), integrate(s16, f16, noise)
            print(f"{'':12} {FLOW_STEPS}-step action max |diff| {float(np.abs(a32 - a16).max()):.2e} "
                  f"(max |action| {float(np.abs(a32).max()):.2f})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,default", help="comma-separated model paths or presets")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per graph (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    if args.runs < 1 or args.threads < 0:
        print("--runs must be >= 1 and --threads >= 0", file=sys.stderr)
        return 2
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__} (CPU provider), torch {torch.__version__}, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory(prefix="onnx_precision_") as tmp:
        for name in (m.strip() for m in args.models.split(",") if m.strip()):
            bench_model(name, args.runs, args.threads, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
