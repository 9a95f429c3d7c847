"""Reduced-precision graphs (fp16, bf16): numerics against float32 PyTorch, tensor types in the graph, and the
onnxruntime runner on an fp16 graph. Tiny preset (random weights), a small deployment (2 images of 4x8 patches).

Tolerances (relative to the largest |output|, per output; ``runtime.onnx.TOLERANCES``): fp16 1e-2, bf16 6e-2.
fp16 keeps 11 significant bits (unit roundoff 4.9e-4) and bf16 8 (3.9e-3); each linear and attention product
rounds its inputs, so an output carries a few unit roundoffs per layer; with norm statistics, softmax and rope in
float32 the error does not grow with activation size. The error must also be non-zero: a graph that silently stayed
float32 would pass the tolerance but not that check.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import onnx
import pytest
import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.presets import build_preset
from alpamayo_ros.runtime import onnx as ox
from alpamayo_ros.runtime.accelerated import ort_runner

pytestmark = pytest.mark.slow  # three exports of two graphs (~20 s on two cores)
torch.set_num_threads(min(2, torch.get_num_threads()))
DEPLOYMENT = ox.Deployment(num_images=2, image_grid_thw=(1, 4, 8), prefix_capacity=96, num_samples=2)
TYPE_NAMES = {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}


@pytest.fixture(scope="module")
def model() -> AlpamayoR1:
    return build_preset("tiny")


@pytest.fixture(scope="module")
def exported(model: AlpamayoR1, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ox.ExportManifest]:
    out = tmp_path_factory.mktemp("precision")
    with torch.no_grad():
        manifest = ox.export_all(model, DEPLOYMENT, out, model_fingerprint="tiny", precisions=("fp16", "bf16"))
    return out, manifest


def _input_types(path: Path) -> dict[str, set[tuple[str, ...]]]:
    """op type -> the set of its nodes' floating input-type tuples (after ONNX shape inference)."""
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = proto.graph
    types: dict[str, int] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        types[value.name] = value.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    found: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for node in graph.node:
        floats = tuple(TYPE_NAMES[types[i]] for i in node.input if types.get(i) in TYPE_NAMES)
        if floats:
            found[node.op_type].add(floats)
    return found


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("subnet", [ox.VISION, ox.EXPERT])
def test_reduced_graph_is_close_to_float32_and_not_equal(
    exported: tuple[Path, ox.ExportManifest], subnet: str, precision: str
) -> None:
    _, manifest = exported
    sub = manifest.graph(subnet, precision)
    atol, rtol = ox.TOLERANCES[(subnet, precision)]
    # onnxruntime's CPU provider runs fp16 graphs; it has no bfloat16 MatMul/Gemm kernels, so the export checks the
    # traced bf16 PyTorch graph instead (and says so)
    assert sub.verified_with == ("onnxruntime-cpu" if precision == "fp16" else "pytorch")
    reference = manifest.graph(subnet)
    for name, err in sub.max_abs_error.items():
        assert err > 0.0, f"{name}: {precision} graph equals float32 exactly: not reduced"
        assert err > 10 * reference.max_abs_error[name], name  # well above the float32 graph's own error
        assert err <= atol + rtol * _scale(exported, subnet, name), name


def _scale(exported: tuple[Path, ox.ExportManifest], subnet: str, name: str) -> float:
    """Largest |output| of the float32 graph on the export's inputs (the tolerance is relative to it)."""
    out, manifest = exported
    inputs = ox.example_inputs(build_preset("tiny"), DEPLOYMENT, subnet)
    session = ox.ort_session(out / manifest.graph(subnet).file)
    (value,) = session.run([name], {k: v.numpy() for k, v in inputs.items()})
    return float(abs(value).max())


@pytest.mark.parametrize(("precision", "low"), [("fp16", "fp16"), ("bf16", "bf16")])
def test_expert_graph_types(exported: tuple[Path, ox.ExportManifest], precision: str, low: str) -> None:
    """Matrix products in the reduced type; softmax, norm statistics, rope, in/out projections in float32."""
    out, manifest = exported
    types = _input_types(out / manifest.graph(ox.EXPERT, precision).file)
    # attention scores and values reduced; the in/out projections' 3-d products float32 (their Gemms are 2-d)
    assert set(types["MatMul"]) == {(low, low), ("fp32", "fp32")}
    assert {t[0] for t in types["Gemm"]} == {low}  # the expert layers' fused linears
    assert all(t == ("fp32",) for t in types["Softmax"])
    assert all(set(t) == {"fp32"} for t in types["ReduceMean"])  # rms-norm statistics
    assert all(set(t) == {"fp32"} for t in types["Sin"] | types["Cos"])  # the Fourier features
    assert not {"QuantizeLinear", "DequantizeLinear"} & set(types)  # no Q/DQ: fp8 is not offered
    proto = onnx.load(str(out / manifest.graph(ox.EXPERT, precision).file))
    io = {v.name: TYPE_NAMES.get(v.type.tensor_type.elem_type) for v in (*proto.graph.input, *proto.graph.output)}
    assert io == {
        "x": "fp32", "t": "fp32", "prefix_keys": low, "prefix_values": low, "prefix_visible": None,
        "rope_cos": "fp32", "rope_sin": "fp32", "velocity": "fp32",
    }  # fmt: skip


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_vision_graph_types(exported: tuple[Path, ox.ExportManifest], precision: str) -> None:
    out, manifest = exported
    path = out / manifest.graph(ox.VISION, precision).file
    types = _input_types(path)
    assert (precision, precision) in types["MatMul"]
    assert all(t == ("fp32",) for t in types["Softmax"])
    assert all(set(t) == {"fp32"} for t in types["LayerNormalization"])
    # patch embedding: fp16 conv; bf16 keeps it float32 (ONNX Conv has no bfloat16)
    assert {t[0] for t in types["Conv"]} == {"fp16" if precision == "fp16" else "fp32"}
    proto = onnx.load(str(path))
    outputs = {v.name: TYPE_NAMES[v.type.tensor_type.elem_type] for v in proto.graph.output}
    assert set(outputs.values()) == {precision}


def test_fp8_is_refused_with_the_reason() -> None:
    with pytest.raises(ox.PrecisionError, match=r"fp8 is not offered for TensorRT yet.*Q/DQ"):
        ox.check_precision("fp8")


def test_onnxruntime_runner_runs_the_fp16_graph(exported: tuple[Path, ox.ExportManifest], model: AlpamayoR1) -> None:
    """The backend's runner feeds float32 torch tensors to the fp16 graph (cast to its input types) and returns
    what the float32 graph returns, within the fp16 tolerance."""
    out, manifest = exported
    inputs = ox.example_inputs(model, DEPLOYMENT, ox.EXPERT)
    cpu = torch.device("cpu")
    half = ort_runner(out, manifest.graph(ox.EXPERT, "fp16"), cpu, print)(inputs)["velocity"]
    full = ort_runner(out, manifest.graph(ox.EXPERT), cpu, print)(inputs)["velocity"]
    assert half.dtype == torch.float32 and half.shape == full.shape
    scale = float(full.abs().max())
    err = float((half - full).abs().max())
    assert 0.0 < err <= ox.TOLERANCES[(ox.EXPERT, "fp16")][1] * scale
