"""TensorRT engines from the ONNX exports: build, cache, validate, run. Only where tensorrt imports and a GPU exists.

TensorRT does not import on our development and CI machines, so these tests skip there (the build plan is covered
everywhere by test_tensorrt_build.py against stand-ins of the TensorRT 10 and 11 APIs, the cache-key and validation
logic by test_engine_cache.py, the exports by test_onnx_export.py). Engines are strongly typed from the graph of
their precision. Tolerances against onnxruntime on the float32 graph: fp32 engines 1e-4 (kernel choice changes
summation order), fp16 engines 1e-2 and bf16 engines 6e-2 relative to the output scale (the export's own budgets
for those graphs against float32 PyTorch, ``runtime.onnx.TOLERANCES``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

tensorrt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (expected on our machines)")
if not torch.cuda.is_available():
    pytest.skip("TensorRT tests need a CUDA GPU", allow_module_level=True)

from alpamayo_ros.model.presets import build_preset  # noqa: E402
from alpamayo_ros.runtime import onnx as ox  # noqa: E402
from alpamayo_ros.runtime.accelerated import TensorRTRunner  # noqa: E402
from alpamayo_ros.runtime.engine_cache import EngineCache  # noqa: E402
from alpamayo_ros.runtime.tensorrt_build import plan_build  # noqa: E402
from alpamayo_ros.runtime.tensorrt_engines import ensure_engine  # noqa: E402

DEPLOYMENT = ox.Deployment(num_images=16, image_grid_thw=(1, 20, 36), prefix_capacity=3006 + 16, num_samples=2)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ox.ExportManifest, object]:
    model = build_preset("tiny")
    out = tmp_path_factory.mktemp("trt")
    with torch.no_grad():
        manifest = ox.export_all(model, DEPLOYMENT, out, model_fingerprint="tiny-test", precisions=("fp16", "bf16"))
    return out, manifest, model


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "rel_tol"), [("fp32", 1e-4), ("fp16", 1e-2), ("bf16", 6e-2)])
@pytest.mark.parametrize("subnet", [ox.VISION, ox.EXPERT])
def test_engine_matches_onnxruntime_and_is_cached(
    exports: tuple[Path, ox.ExportManifest, object], subnet: str, precision: str, rel_tol: float
) -> None:
    out, manifest, model = exports
    plan = plan_build(tensorrt, precision)
    sub = manifest.graph(subnet, plan.graph_precision)
    cache = EngineCache(out / "engines")
    lines: list[str] = []
    kwargs = {"subnet": subnet, "onnx_path": out / sub.file, "plan": plan, "inputs": sub.inputs}
    path = ensure_engine(cache, outputs=sub.outputs, log=lines.append, **kwargs)  # type: ignore[arg-type]
    assert any("building TensorRT" in line and f"({precision}, strong typing)" in line for line in lines)
    lines.clear()
    again = ensure_engine(cache, outputs=sub.outputs, log=lines.append, **kwargs)  # type: ignore[arg-type]
    assert again == path and lines == [f"{subnet}: using cached engine {path.name}"]

    inputs = ox.example_inputs(model, DEPLOYMENT, subnet)  # type: ignore[arg-type]
    session = ox.ort_session(out / manifest.graph(subnet).file)
    names = [o.name for o in sub.outputs]
    want = session.run(names, {k: v.numpy() for k, v in inputs.items()})
    got = TensorRTRunner(path, cache, path.with_suffix(".json"))({k: v.cuda() for k, v in inputs.items()})
    torch.cuda.synchronize()
    for name, ref in zip(names, want, strict=True):
        err = float(np.abs(got[name].float().cpu().numpy() - ref).max())
        assert err <= rel_tol * max(float(np.abs(ref).max()), 1e-3), (name, err)


@pytest.mark.gpu
def test_tampered_engine_is_rebuilt_with_a_reason(exports: tuple[Path, ox.ExportManifest, object]) -> None:
    out, manifest, _ = exports
    sub = manifest.graph(ox.EXPERT)
    cache = EngineCache(out / "engines-tamper")
    plan = plan_build(tensorrt, "fp32")
    kwargs = {"subnet": ox.EXPERT, "onnx_path": out / sub.file, "plan": plan, "inputs": sub.inputs}
    path = ensure_engine(cache, outputs=sub.outputs, log=lambda _: None, **kwargs)  # type: ignore[arg-type]
    with path.open("ab") as handle:
        handle.write(b"\0")
    lines: list[str] = []
    ensure_engine(cache, outputs=sub.outputs, log=lines.append, **kwargs)  # type: ignore[arg-type]
    assert any("does not match the recorded" in line for line in lines)
