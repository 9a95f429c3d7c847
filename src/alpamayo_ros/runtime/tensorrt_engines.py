"""Build, cache and run TensorRT engines from the ONNX exports (imports tensorrt lazily, only where it is installed).

TensorRT does not import on our development machines (the ``tensorrt`` wheels there are stubs), so engine builds
and runs are exercised only where `tensorrt` imports and a GPU exists. What decides the build (typing, flags per
TensorRT line) is ``tensorrt_build.plan_build``, and the calls made here are tested against stand-in modules of the
TensorRT 10 and 11 Python APIs; the cache-key and validation logic lives in engine_cache.py and is tested everywhere.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpamayo_ros.runtime.engine_cache import (
    EngineCache,
    EngineKey,
    Manifest,
    TensorSpec,
    io_mismatches,
    sha256_file,
)
from alpamayo_ros.runtime.onnx.export import ExportManifest
from alpamayo_ros.runtime.tensorrt_build import BuildPlan, plan_build

if TYPE_CHECKING:
    import torch

Log = Callable[[str], None]

_TRT_DTYPE_NAMES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "FP8": "float8_e4m3fn",
    "UINT8": "uint8",
}


class TensorRTUnavailableError(RuntimeError):
    """tensorrt (or CUDA) is missing: the tensorrt backend cannot run here."""


def _trt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "the tensorrt backend needs NVIDIA TensorRT >= 10 (`pip install tensorrt` from NVIDIA's index) "
            f"and a CUDA GPU; import failed: {exc}"
        ) from exc
    return tensorrt


def _dtype_name(trt_dtype: Any) -> str:
    name = str(trt_dtype).split(".")[-1]
    return _TRT_DTYPE_NAMES.get(name, name.lower())


def _make_progress_monitor(trt: Any, log: Log) -> Any:
    """A TensorRT IProgressMonitor that logs phase starts/ends and every ~10% of a phase's steps."""

    class _Monitor(trt.IProgressMonitor):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}
            self._started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._steps[phase_name] = max(num_steps, 1)
            self._started[phase_name] = time.monotonic()
            log(f"  {phase_name} ({num_steps} steps){f' in {parent_phase}' if parent_phase else ''}")

        def step_complete(self, phase_name: str, step: int) -> bool:
            total = self._steps.get(phase_name, 1)
            if total >= 10 and (step + 1) % max(total // 10, 1) == 0:
                log(f"  {phase_name}: {step + 1}/{total}")
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            elapsed = time.monotonic() - self._started.pop(phase_name, time.monotonic())
            log(f"  {phase_name} done in {elapsed:.1f} s")

    return _Monitor()


def build_serialized_engine(
    onnx_path: Path, plan: BuildPlan, log: Log, workspace_gib: float = 8.0, trt: Any = None
) -> bytes:
    """Parse an ONNX file (exported in ``plan.graph_precision``) and build a serialized engine as ``plan`` says.

    ``trt``: the tensorrt module (default: imported here; tests pass stand-ins).
    """
    trt = trt if trt is not None else _trt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(plan.network_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    config.progress_monitor = _make_progress_monitor(trt, log)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(
            f"TensorRT {plan.tensorrt_version} failed to build an engine from {onnx_path} "
            f"({plan.precision}, {plan.typing} typing)"
        )
    return bytes(serialized)


def engine_io(engine: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The (inputs, outputs) a deserialized engine declares."""
    trt = _trt()
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        spec = TensorSpec(
            name, tuple(int(d) for d in engine.get_tensor_shape(name)), _dtype_name(engine.get_tensor_dtype(name))
        )
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(spec)
    return tuple(inputs), tuple(outputs)


def current_key(subnet: str, onnx_path: Path, plan: BuildPlan, inputs: Sequence[TensorSpec]) -> EngineKey:
    """The cache key for this machine (GPU capability read live; TensorRT version from the plan)."""
    import torch

    if not torch.cuda.is_available():
        raise TensorRTUnavailableError("the tensorrt backend needs a CUDA GPU; torch sees none")
    major, minor = torch.cuda.get_device_capability()
    return EngineKey(
        subnet=subnet,
        onnx_sha256=sha256_file(onnx_path),
        tensorrt_version=plan.tensorrt_version,
        compute_capability=f"{major}.{minor}",
        precision=plan.precision,
        graph_precision=plan.graph_precision,
        typing=plan.typing,
        input_shapes=tuple(sorted((s.name, s.shape) for s in inputs)),
    )


def ensure_engine(
    cache: EngineCache,
    *,
    subnet: str,
    onnx_path: Path,
    plan: BuildPlan,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    log: Log,
) -> Path:
    """A valid engine for this ONNX/plan/GPU: from the cache, or built now with a log line saying why."""
    key = current_key(subnet, onnx_path, plan, inputs)
    path, reason = cache.lookup(key, inputs, outputs)
    if path is not None:
        log(f"{subnet}: using cached engine {path.name}")
        return path
    log(f"{subnet}: building TensorRT {plan.tensorrt_version} engine ({plan.precision}, {plan.typing} typing) "
        f"because {reason}")  # fmt: skip
    started = time.monotonic()
    data = build_serialized_engine(onnx_path, plan, log)
    elapsed = time.monotonic() - started
    engine = deserialize(data)
    built_inputs, built_outputs = engine_io(engine)
    problems = io_mismatches(inputs, built_inputs) + io_mismatches(outputs, built_outputs)
    if problems:
        raise RuntimeError(f"{subnet}: the built engine's I/O differs from the runtime's: {'; '.join(problems)}")
    manifest = Manifest(
        key=key,
        engine_sha256=hashlib.sha256(data).hexdigest(),
        inputs=built_inputs,
        outputs=built_outputs,
        build_seconds=elapsed,
    )
    path = cache.store(manifest, data)
    log(f"{subnet}: built {path.name} in {elapsed:.0f} s ({len(data) / 2**20:.0f} MiB)")
    return path


def ensure_engines(
    out_dir: Path, manifest: ExportManifest, precisions: dict[str, str], typing: str, log: Log
) -> dict[str, Path]:
    """One valid engine per sub-network (``precisions`` by subnet) under ``<out_dir>/engines``, each from the graph
    its plan names (the graph of that precision when strongly typed, the float32 graph when weak).

    Raises:
        TensorRTVersionError: the installed TensorRT cannot build a requested precision / typing;
        ExportError: the manifest lacks the graph a plan needs.
    """
    trt = _trt()
    cache = EngineCache(out_dir / "engines")
    engines: dict[str, Path] = {}
    for subnet, precision in precisions.items():
        plan = plan_build(trt, precision, typing)
        graph = manifest.graph(subnet, plan.graph_precision)
        engines[subnet] = ensure_engine(
            cache, subnet=subnet, onnx_path=out_dir / graph.file, plan=plan, inputs=graph.inputs,
            outputs=graph.outputs, log=log,
        )  # fmt: skip
    return engines


def deserialize(data: bytes) -> Any:
    trt = _trt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise RuntimeError("TensorRT could not deserialize the engine (built by another TensorRT version or GPU?)")
    return engine


class EngineRunner:
    """Runs one engine on torch CUDA tensors (static shapes, batch 1), on the current torch stream."""

    def __init__(self, engine_path: Path, expected_sha256: str) -> None:
        actual = sha256_file(engine_path)
        if actual != expected_sha256:
            raise RuntimeError(f"{engine_path} hash {actual[:12]} != recorded {expected_sha256[:12]}; not loading it")
        self.engine = deserialize(engine_path.read_bytes())
        self.context = self.engine.create_execution_context()
        self.inputs, self.outputs = engine_io(self.engine)

    def __call__(self, **tensors: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch

        missing = [spec.name for spec in self.inputs if spec.name not in tensors]
        if missing:
            raise ValueError(f"missing engine inputs: {', '.join(missing)}")
        results: dict[str, torch.Tensor] = {}
        for spec in self.inputs:
            tensor = tensors[spec.name].contiguous()
            if tuple(tensor.shape) != spec.shape:
                raise ValueError(f"input {spec.name}: shape {tuple(tensor.shape)}, engine wants {spec.shape}")
            tensors[spec.name] = tensor
            self.context.set_tensor_address(spec.name, tensor.data_ptr())
        for spec in self.outputs:
            out = torch.empty(spec.shape, dtype=getattr(torch, spec.dtype), device="cuda")
            results[spec.name] = out
            self.context.set_tensor_address(spec.name, out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return results
