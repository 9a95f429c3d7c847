"""Export, verification and the export manifest of the graphs in ``graphs.py``.

Shapes are static per deployment (number of images, image grid, prefix capacity, samples); batch is 1 input with
``num_samples`` rows. Graphs are exported with the TorchScript exporter (``dynamo=False``; it needs no onnxscript
and traces these explicit graphs robustly) at opset 18, which TensorRT 10 and 11 parse. The float32 graphs are
always exported (the onnxruntime backend's default and the reference); reduced-precision ones (``precision.py``)
on request, as ``<subnet>.<precision>.onnx``. Every export is checked with onnxruntime (CPU) against the float32
PyTorch graph before it is recorded in the manifest.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.jit._trace import TracerWarning

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.runtime.engine_cache import TensorSpec, sha256_file
from alpamayo_ros.runtime.onnx.deployment import Deployment, expert_rope, prefix_buffers, vision_aux_inputs
from alpamayo_ros.runtime.onnx.graphs import EXPERT, SUBNETS, VISION, make_graph, output_names
from alpamayo_ros.runtime.onnx.precision import check_precision

LOG = logging.getLogger(__name__)
Log = Callable[[str], None]

OPSET = 18
EXPORT_MANIFEST = "export_manifest.json"
EXPORT_MANIFEST_VERSION = 2

# onnxruntime (CPU) vs the float32 PyTorch graph, same inputs: max |err| <= atol + rtol * max |ref|, per output.
# fp32: only summation order differs (ORT's fused kernels vs ATen), a few float32 ulps per op amplified by depth;
# measured on the tiny preset: vision ~1e-6 (outputs O(1)), expert velocity ~1e-8 (outputs O(1e-2)); the budgets
# leave two orders of magnitude and equal the fixture tolerances (image embeddings 1e-4, velocities 1e-6 absolute).
# fp16 (11 significant bits, unit roundoff 4.9e-4) and bf16 (8 bits, 3.9e-3): every linear and attention product
# rounds its inputs, so the relative error of an output is a few unit roundoffs times the depth; the budgets are
# 1e-2 and 6e-2 of the output scale (measured on the tiny preset and the small driver: see README), with float32
# norms, softmax and rope keeping the error from growing with the activations' magnitude.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    (VISION, "fp32"): (1e-4, 1e-4),
    (EXPERT, "fp32"): (1e-6, 1e-4),
    (VISION, "fp16"): (0.0, 1e-2),
    (EXPERT, "fp16"): (0.0, 1e-2),
    (VISION, "bf16"): (0.0, 6e-2),
    (EXPERT, "bf16"): (0.0, 6e-2),
}


class ExportError(RuntimeError):
    """An export failed or does not reproduce PyTorch within its tolerance."""


def graph_key(subnet: str, precision: str) -> str:
    """The manifest key and file stem of one graph: ``vision``, ``expert_step.fp16``, ..."""
    return subnet if precision == "fp32" else f"{subnet}.{precision}"


@dataclass
class SubnetExport:
    """One exported graph as recorded in the export manifest."""

    name: str  # graph_key(subnet, precision)
    file: str
    onnx_sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    subnet: str = ""
    precision: str = "fp32"
    max_abs_error: dict[str, float] = field(default_factory=dict)  # this graph vs float32 PyTorch, per output
    verified_with: str = ""  # onnxruntime-cpu, or pytorch where the CPU provider lacks the types' kernels
    tolerance: tuple[float, float] = (0.0, 0.0)  # (atol, rtol)
    export_seconds: float = 0.0


def _spec_json(s: TensorSpec) -> dict[str, Any]:
    return {"name": s.name, "shape": list(s.shape), "dtype": s.dtype}


def _specs(items: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(str(i["name"]), tuple(int(v) for v in i["shape"]), str(i["dtype"])) for i in items)


@dataclass
class ExportManifest:
    """What build-engines and the accelerated backend agree on: graphs, shapes and the model they came from."""

    model_fingerprint: str
    deployment: Deployment
    subnets: dict[str, SubnetExport]  # by graph_key
    opset: int = OPSET
    torch_version: str = torch.__version__
    exported_at_unix: float = field(default_factory=time.time)

    def graph(self, subnet: str, precision: str = "fp32") -> SubnetExport:
        """The export of ``subnet`` in ``precision``.

        Raises:
            ExportError: not exported in that precision.
        """
        key = graph_key(subnet, precision)
        if key not in self.subnets:
            raise ExportError(f"no {precision} {subnet} graph in {EXPORT_MANIFEST}: export it with --precision")
        return self.subnets[key]

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest_version": EXPORT_MANIFEST_VERSION,
            "model_fingerprint": self.model_fingerprint,
            "deployment": self.deployment.to_json(),
            "opset": self.opset,
            "torch_version": self.torch_version,
            "exported_at_unix": self.exported_at_unix,
            "subnets": {
                name: {
                    "file": s.file,
                    "subnet": s.subnet,
                    "precision": s.precision,
                    "onnx_sha256": s.onnx_sha256,
                    "inputs": [_spec_json(i) for i in s.inputs],
                    "outputs": [_spec_json(o) for o in s.outputs],
                    "max_abs_error": s.max_abs_error,
                    "verified_with": s.verified_with,
                    "tolerance": {"atol": s.tolerance[0], "rtol": s.tolerance[1]},
                    "export_seconds": s.export_seconds,
                }
                for name, s in self.subnets.items()
            },
        }

    def write(self, out_dir: Path) -> Path:
        path = out_dir / EXPORT_MANIFEST
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @staticmethod
    def read(out_dir: Path) -> ExportManifest:
        body = json.loads((out_dir / EXPORT_MANIFEST).read_text())
        if body.get("manifest_version") != EXPORT_MANIFEST_VERSION:
            raise ExportError(
                f"{EXPORT_MANIFEST}: version {body.get('manifest_version')!r}, expected {EXPORT_MANIFEST_VERSION}"
            )
        subnets = {
            name: SubnetExport(
                name=name,
                file=str(s["file"]),
                onnx_sha256=str(s["onnx_sha256"]),
                inputs=_specs(s["inputs"]),
                outputs=_specs(s["outputs"]),
                subnet=str(s["subnet"]),
                precision=str(s["precision"]),
                max_abs_error={k: float(v) for k, v in s.get("max_abs_error", {}).items()},
                verified_with=str(s.get("verified_with", "")),
                tolerance=(float(s["tolerance"]["atol"]), float(s["tolerance"]["rtol"])),
                export_seconds=float(s.get("export_seconds", 0.0)),
            )
            for name, s in body["subnets"].items()
        }
        return ExportManifest(
            model_fingerprint=str(body["model_fingerprint"]),
            deployment=Deployment.from_json(body["deployment"]),
            subnets=subnets,
            opset=int(body["opset"]),
            torch_version=str(body.get("torch_version", "")),
            exported_at_unix=float(body.get("exported_at_unix", 0.0)),
        )


def _rms_norm_symbolic(g: Any, x: Any, normalized_shape: Any, weight: Any, eps: Any) -> Any:
    """aten::rms_norm as ONNX ops (opset 18 has no RMSNormalization): x / sqrt(mean(x * x) + eps) * weight, in x's
    type (float32 wherever the graphs normalise: ``static_cache.rms_norm`` casts to the weight's dtype first)."""
    from torch.onnx import symbolic_helper

    # only the number of normalised (trailing) dims matters; the sizes may be traced values (x.shape[-1])
    node = normalized_shape.node()
    if node.kind() == "prim::ListConstruct":
        dims = symbolic_helper._unpack_list(normalized_shape)
    else:
        dims = symbolic_helper._get_const(normalized_shape, "is", "normalized_shape")  # type: ignore[no-untyped-call]
    epsilon = symbolic_helper._get_const(eps, "f", "eps")  # type: ignore[no-untyped-call]
    axes = g.op("Constant", value_t=torch.tensor(list(range(-len(dims), 0)), dtype=torch.int64))
    mean = g.op("ReduceMean", g.op("Mul", x, x), axes, keepdims_i=1)
    eps_like = g.op("CastLike", g.op("Constant", value_t=torch.tensor(epsilon, dtype=torch.float32)), x)
    out = g.op("Div", x, g.op("Sqrt", g.op("Add", mean, eps_like)))
    return out if symbolic_helper._is_none(weight) else g.op("Mul", out, weight)


# torch ScalarType codes (c10) -> ONNX TensorProto types, for the float types a softmax may be asked to run in
_SOFTMAX_TYPES = {6: 1, 5: 10, 15: 16}  # float32 -> FLOAT, float16 -> FLOAT16, bfloat16 -> BFLOAT16


def _softmax_symbolic(g: Any, x: Any, dim: Any, dtype: Any) -> Any:
    """aten::softmax with ``dtype`` as Cast *then* Softmax: the stock symbolic drops a constant ``dtype``, so an
    fp16 graph's softmax would run in fp16 (``static_cache.explicit_attention`` asks for float32)."""
    from torch.onnx import symbolic_helper

    axis = symbolic_helper._get_const(dim, "i", "dim")  # type: ignore[no-untyped-call]
    if not symbolic_helper._is_none(dtype):
        scalar = int(symbolic_helper._get_const(dtype, "i", "dtype"))  # type: ignore[no-untyped-call]
        if scalar not in _SOFTMAX_TYPES:
            raise ExportError(f"softmax in torch scalar type {scalar} has no ONNX float type here")
        x = g.op("Cast", x, to_i=_SOFTMAX_TYPES[scalar])
    return g.op("Softmax", x, axis_i=axis)


def _register_symbolics() -> None:
    """Idempotent: the TorchScript exporter's symbolics for aten::rms_norm (no stock one at opset 18) and
    aten::softmax (float32 before, not after, the softmax)."""
    from torch.onnx import register_custom_op_symbolic  # type: ignore[attr-defined]

    register_custom_op_symbolic("aten::rms_norm", _rms_norm_symbolic, OPSET)
    register_custom_op_symbolic("aten::softmax", _softmax_symbolic, OPSET)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def example_inputs(
    model: AlpamayoR1, deployment: Deployment, subnet: str, precision: str = "fp32", seed: int = 0
) -> dict[str, torch.Tensor]:
    """Realistic CPU inputs for tracing and verification (shapes = the deployment's; the prefix K/V in the graph's
    dtype, everything else float32 or bool)."""
    gen = torch.Generator().manual_seed(seed)
    if subnet == VISION:
        visual_cfg = model.vlm.model.visual.config
        row = int(visual_cfg.in_channels) * int(visual_cfg.temporal_patch_size) * int(visual_cfg.patch_size) ** 2
        aux = {k: v.cpu() for k, v in vision_aux_inputs(model, deployment).items()}
        return {"pixel_values": torch.randn(deployment.num_patches, row, generator=gen), **aux}
    if subnet == EXPERT:
        cfg = model.expert.config
        rows, n, cap = deployment.num_samples, int(model.n_action_tokens), deployment.prefix_capacity
        layers, kv, d = int(cfg.num_hidden_layers), int(cfg.num_key_value_heads), int(cfg.head_dim)
        valid = max(1, cap - cap // 8)  # some padding columns, and some hidden reasoning columns
        hidden = torch.zeros(rows, valid, dtype=torch.bool)
        hidden[:, valid - valid // 16 :] = True
        keys = [torch.randn(rows, kv, valid, d, generator=gen) for _ in range(layers)]
        values = [torch.randn(rows, kv, valid, d, generator=gen) for _ in range(layers)]
        k_buf, v_buf, visible = prefix_buffers(keys, values, hidden, cap, check_precision(precision))
        start = valid - valid // 16 + 7
        positions = (torch.arange(n)[None, :] + start).expand(rows, n)[None].expand(3, rows, n)
        cos, sin = expert_rope(model, positions.to(model.device))
        return {
            "x": torch.randn(rows, n, 2, generator=gen),
            "t": torch.full((rows, 1, 1), 0.3),
            "prefix_keys": k_buf,
            "prefix_values": v_buf,
            "prefix_visible": visible,
            "rope_cos": cos.cpu(),
            "rope_sin": sin.cpu(),
        }
    raise ValueError(f"unknown subnet {subnet!r}")


def ort_session(path: Path, providers: Sequence[Any] = ("CPUExecutionProvider",), threads: int = 0) -> Any:
    """An onnxruntime session (imported lazily: onnxruntime is only needed by this backend)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))


def _within(err: float, ref_max: float, tol: tuple[float, float]) -> bool:
    return err <= tol[0] + tol[1] * ref_max


def run_on_cpu(path: Path, inputs: dict[str, torch.Tensor], names: Sequence[str]) -> list[np.ndarray] | None:
    """The graph's outputs from onnxruntime's CPU provider; None where it cannot run the graph's types (bfloat16:
    numpy has no such dtype to feed, and the CPU provider has no bfloat16 MatMul/Gemm: NOT_IMPLEMENTED)."""
    if any(t.dtype == torch.bfloat16 for t in inputs.values()):
        return None
    try:
        session = ort_session(path)
    except Exception as exc:  # onnxruntime raises its own NotImplemented type; match on the status text
        if "NOT_IMPLEMENTED" in str(exc):
            return None
        raise
    feed_names = [i.name for i in session.get_inputs()]
    got: list[np.ndarray] = session.run(list(names), {n: inputs[n].detach().cpu().numpy() for n in feed_names})
    return got


def compare(
    path: Path, reference: Sequence[torch.Tensor], got: Sequence[Any], names: Sequence[str], tol: tuple[float, float]
) -> dict[str, float]:
    """Max |err| per output of ``got`` against the float32 ``reference``.

    Raises:
        ExportError: an output beyond ``tol`` = (atol, rtol of max |ref|), or not finite.
    """
    errors: dict[str, float] = {}
    bad = []
    for name, r, g in zip(names, reference, got, strict=True):
        ref = r.detach().float().cpu().numpy()
        value = g.detach().float().cpu().numpy() if isinstance(g, torch.Tensor) else np.asarray(g, dtype=np.float32)
        err = float(np.max(np.abs(ref - value))) if ref.size else 0.0
        errors[name] = err
        ref_max = float(np.abs(ref).max()) if ref.size else 0.0
        if not (math.isfinite(err) and _within(err, ref_max, tol)):
            bad.append(f"{name}: max |err| {err:.3g} (max |ref| {ref_max:.3g})")
    if bad:
        raise ExportError(
            f"{path.name}: onnxruntime differs from float32 PyTorch beyond atol {tol[0]} + rtol {tol[1]}: "
            + "; ".join(bad)
        )
    return errors


def export_subnet(
    model: AlpamayoR1,
    deployment: Deployment,
    subnet: str,
    out_dir: Path,
    *,
    model_fingerprint: str,
    precision: str = "fp32",
    verify_graph: bool = True,
    log: Log = LOG.info,
) -> SubnetExport:
    """Trace one graph to ``<out_dir>/<graph_key>.onnx``, stamp it with the model fingerprint and its precision,
    verify it with onnxruntime against the float32 PyTorch graph.

    Raises:
        ExportError: onnxruntime disagrees with PyTorch beyond ``TOLERANCES[(subnet, precision)]``.
    """
    started = time.monotonic()
    inputs = example_inputs(model, deployment, subnet, precision)
    graph = make_graph(model, deployment, subnet, precision).eval()
    names = list(inputs)
    outputs = output_names(graph)
    key = graph_key(subnet, precision)
    path = out_dir / f"{key}.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    _register_symbolics()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, chosen on purpose
        warnings.simplefilter("ignore", TracerWarning)  # shape reads: shapes are static per deployment
        traced = graph(**inputs)
        shaped = list(traced) if isinstance(traced, tuple) else [traced]
        torch.onnx.export(
            graph,
            tuple(inputs[n] for n in names),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=outputs,
            do_constant_folding=True,
        )
        if precision == "fp32":
            reference = shaped
        else:
            float_inputs = {n: (v.float() if v.is_floating_point() else v) for n, v in inputs.items()}
            ref = make_graph(model, deployment, subnet, "fp32").eval()(**float_inputs)
            reference = list(ref) if isinstance(ref, tuple) else [ref]
    _stamp(
        path,
        {
            "alpamayo_ros.subnet": subnet,
            "alpamayo_ros.precision": precision,
            "alpamayo_ros.model_fingerprint": model_fingerprint,
            "alpamayo_ros.deployment": json.dumps(deployment.to_json(), sort_keys=True),
        },
    )
    export_seconds = time.monotonic() - started
    tolerance = TOLERANCES[(subnet, precision)]
    result = SubnetExport(
        name=key,
        file=path.name,
        onnx_sha256=sha256_file(path),
        inputs=tuple(TensorSpec(n, tuple(inputs[n].shape), _dtype_name(inputs[n].dtype)) for n in names),
        outputs=tuple(
            TensorSpec(n, tuple(r.shape), _dtype_name(r.dtype)) for n, r in zip(outputs, shaped, strict=True)
        ),
        subnet=subnet,
        precision=precision,
        tolerance=tolerance,
        export_seconds=export_seconds,
    )
    log(f"{key}: exported {path.name} ({path.stat().st_size / 2**20:.1f} MiB) in {export_seconds:.1f} s")
    if verify_graph:
        got = run_on_cpu(path, inputs, outputs)
        if got is None:
            result.verified_with = "pytorch"
            result.max_abs_error = compare(path, reference, shaped, outputs, tolerance)
            worst = max(result.max_abs_error.values(), default=0.0)
            log(
                f"{key}: onnxruntime's CPU provider cannot run {precision} matrix products; the traced {precision} "
                f"PyTorch graph matches float32, max |err| {worst:.2e} (run the .onnx on a GPU provider to check it)"
            )
        else:
            result.verified_with = "onnxruntime-cpu"
            result.max_abs_error = compare(path, reference, got, outputs, tolerance)
            worst = max(result.max_abs_error.values(), default=0.0)
            log(f"{key}: onnxruntime (CPU) matches PyTorch, max |err| {worst:.2e}")
    return result


def _stamp(path: Path, props: dict[str, str]) -> None:
    """Record provenance inside the .onnx, so its hash (and any engine cache key) changes with the model."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def _with_fp32(precisions: Iterable[str]) -> tuple[str, ...]:
    wanted = ["fp32", *precisions]
    for precision in wanted:
        check_precision(precision)
    return tuple(dict.fromkeys(wanted))


def export_all(
    model: AlpamayoR1,
    deployment: Deployment,
    out_dir: Path,
    *,
    model_fingerprint: str,
    precisions: Iterable[str] = (),
    verify_graph: bool = True,
    log: Log = LOG.info,
) -> ExportManifest:
    """Export (and verify) both sub-networks in float32 and each of ``precisions``; write the export manifest."""
    if model.device.type != "cpu":
        raise ExportError("exports are traced on the CPU: pass a CPU model")
    subnets: dict[str, SubnetExport] = {}
    for precision in _with_fp32(precisions):
        for name in SUBNETS:
            subnets[graph_key(name, precision)] = export_subnet(
                model, deployment, name, out_dir, model_fingerprint=model_fingerprint, precision=precision,
                verify_graph=verify_graph, log=log,
            )  # fmt: skip
    manifest = ExportManifest(model_fingerprint=model_fingerprint, deployment=deployment, subnets=subnets)
    manifest.write(out_dir)
    return manifest


def manifest_problems(
    out_dir: Path, model_fingerprint: str, deployment: Deployment, precisions: Iterable[str] = ()
) -> list[str]:
    """Why the exports in ``out_dir`` cannot serve this model, deployment and precisions (empty = usable)."""
    if not (out_dir / EXPORT_MANIFEST).is_file():
        return [f"no {EXPORT_MANIFEST} in {out_dir}"]
    try:
        manifest = ExportManifest.read(out_dir)
    except (OSError, ValueError, KeyError, TypeError, ExportError) as exc:
        return [f"unreadable {EXPORT_MANIFEST} ({type(exc).__name__}: {exc})"]
    problems = []
    if manifest.model_fingerprint != model_fingerprint:
        problems.append(f"exported from model {manifest.model_fingerprint!r}, running {model_fingerprint!r}")
    if manifest.deployment != deployment:
        problems.append(f"exported for {manifest.deployment}, need {deployment}")
    for precision in _with_fp32(precisions):
        for name in SUBNETS:
            key = graph_key(name, precision)
            sub = manifest.subnets.get(key)
            if sub is None:
                problems.append(f"{key} missing from the manifest")
                continue
            path = out_dir / sub.file
            if not path.is_file():
                problems.append(f"{sub.file} missing")
            elif sha256_file(path) != sub.onnx_sha256:
                problems.append(f"{sub.file} hash differs from the manifest (modified or truncated)")
    return problems


def ensure_exports(
    deployment: Deployment,
    out_dir: Path,
    model_fingerprint: str,
    load_cpu_model: Callable[[], AlpamayoR1],
    log: Log = LOG.info,
    *,
    precisions: Iterable[str] = (),
) -> ExportManifest:
    """Reuse valid exports, or re-export with a log line naming every reason (never silently).

    ``load_cpu_model`` gives a float32 CPU model with the same weights; it is only called when exporting (a model
    that already runs on the CPU in float32 can be returned as is).
    """
    wanted = _with_fp32(precisions)
    problems = manifest_problems(out_dir, model_fingerprint, deployment, wanted)
    if not problems:
        log(f"using ONNX exports in {out_dir}")
        return ExportManifest.read(out_dir)
    log(f"exporting ONNX to {out_dir} because " + "; ".join(problems))
    return export_all(
        load_cpu_model(), deployment, out_dir, model_fingerprint=model_fingerprint, precisions=wanted, log=log
    )
