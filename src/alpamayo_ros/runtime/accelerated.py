"""onnxruntime / TensorRT backends: the vision encoder and the expert step run from exported graphs.

``load_accelerated_model(spec)`` builds the torch backend's DrivingModel (same preprocessing, prompt, sampling,
reasoning decode, flow-matching loop and action space, so outputs and timings have the same meaning and the node
behaves the same) and replaces two of its stages with runners over the exports of ``runtime/onnx``:

* vision: ``(pixel_values + per-deployment position/rotary tables) -> (image_embeds, deepstack)``;
* expert step: once per inference the VLM's KV cache is copied into a static-capacity prefix buffer with a bool
  visibility mask and the action tokens' rotary tables; then the same graph runs for each of the Euler steps.

onnxruntime uses its CUDA execution provider when the model is on a GPU and the installed onnxruntime has it
(I/O bound to torch CUDA memory), else the CPU provider (tensors are copied to the host). TensorRT engines are built
or reused through ``tensorrt_engines.ensure_engines`` (cache under ``<engine_dir>/engines``; precision and network
typing as ``build-engines`` chose them) and run by ``EngineRunner``; that path runs only where ``tensorrt`` imports
and a GPU exists (not on our machines, so no engine is built or run here). Missing or stale exports are
re-exported (with a log line saying why) from a float32 CPU copy of the model; ``alpamayo-ros build-engines`` does
the same ahead of time.

Prefill and reasoning decode stay in PyTorch, on whatever path the torch backend runs (the eager DynamicCache stages,
or ``model.fast`` with ``model.fast_path``): the measurements behind that choice are in
``docs/benchmarks/decode_design_h200_2026-11-26.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.types import DrivingModel, ModelInfo, ModelInput, Prediction
from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, ExpertContext, ExpertStep, VisionOutput
from alpamayo_ros.model.processor import prompt_ids, target_size
from alpamayo_ros.runtime import onnx as ox
from alpamayo_ros.runtime.engine_cache import EngineCache
from alpamayo_ros.runtime.torch_backend import AlpamayoDrivingModel, load_torch_model

LOG = logging.getLogger(__name__)
Log = Callable[[str], None]

DEFAULT_CAMERA_HW = (1080, 1920)  # the rig's raw frames; any 16:9 size gives the same 320x576 grid


class SubnetRunner(Protocol):
    """Runs one exported graph: named torch tensors in, named torch tensors out (on ``device``)."""

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...


# -- deployment ----------------------------------------------------------------------------------------------------
def deployment_for(
    driving: AlpamayoDrivingModel,
    camera_hw: tuple[int, int] = DEFAULT_CAMERA_HW,
    max_reasoning_tokens: int | None = None,
    num_samples: int | None = None,
) -> ox.Deployment:
    """Static shapes for this model and spec: images per input, processed grid, prefix capacity, samples."""
    model = driving.model
    if model is None:
        raise RuntimeError("model was closed")
    cfg = driving.image_cfg
    h, w = target_size(camera_hw[0], camera_hw[1], cfg)
    grid = (1, h // cfg.patch_size, w // cfg.patch_size)
    num_images = len(driving.info.cameras) * len(driving.info.frame_offsets_sec)
    grids = torch.tensor([list(grid)] * num_images)
    prompt_len = int(prompt_ids(driving.tokenizer, grids, cfg.merge_size, model.cfg.tokens_per_history_traj).shape[1])
    budget = driving.spec.max_reasoning_tokens if max_reasoning_tokens is None else max_reasoning_tokens
    samples = driving.spec.num_samples if num_samples is None else num_samples
    return ox.Deployment(num_images, grid, prompt_len + budget, samples)


def choose_deployment(wanted: ox.Deployment, out_dir: Path) -> ox.Deployment:
    """An existing export's shapes when they can serve ``wanted`` (its camera grid, a capacity at least as large)."""
    try:
        existing = ox.ExportManifest.read(out_dir).deployment
    except (OSError, ValueError, KeyError, TypeError, ox.ExportError):
        return wanted
    if (
        existing.num_images == wanted.num_images
        and existing.num_samples == wanted.num_samples
        and existing.prefix_capacity >= wanted.prefix_capacity
    ):
        return existing
    return wanted


def default_engine_dir(spec: ModelSpec, info: ModelInfo) -> Path:
    """``spec.engine_dir``, else ``<checkpoint>/engines``, else a per-model folder in the user cache (presets)."""
    if spec.engine_dir:
        return Path(spec.engine_dir).expanduser()
    checkpoint = Path(spec.model_path).expanduser()
    if checkpoint.is_dir():
        return checkpoint / "engines"
    cache = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    return cache / "alpamayo_ros" / "engines" / info.version


# -- runners -------------------------------------------------------------------------------------------------------
_NUMPY_DTYPES = {"float32": "float32", "float16": "float16", "int64": "int64", "int32": "int32", "bool": "bool"}


class OrtRunner:
    """One onnxruntime session; CUDA execution provider with I/O bound to torch memory when available.

    ``threads``: onnxruntime's intra-op thread count (``ModelSpec.cpu_threads``; 0 = onnxruntime's default, one per
    core). Kept small on shared machines: workers spinning against other busy processes slow CPU inference down.
    """

    def __init__(
        self, path: Path, export: ox.SubnetExport, device: torch.device, log: Log = LOG.info, *, threads: int = 0
    ) -> None:
        import onnxruntime as ort

        self.export = export
        self.device = device
        available = ort.get_available_providers()
        self.on_cuda = device.type == "cuda" and "CUDAExecutionProvider" in available
        if device.type == "cuda" and not self.on_cuda:
            log(f"{export.name}: onnxruntime has no CUDA provider ({', '.join(available)}); running on the CPU")
        providers: list[Any] = ["CPUExecutionProvider"]
        if self.on_cuda:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        unsupported = sorted({s.dtype for s in (*export.inputs, *export.outputs)} - _NUMPY_DTYPES.keys())
        if unsupported:
            raise ValueError(
                f"{export.name}: the onnxruntime runner cannot bind {', '.join(unsupported)} tensors (no numpy type); "
                "run the fp32 or fp16 graph"
            )
        self.session = ox.ort_session(path, providers, threads=threads)
        self._np_types = {s.name: _NUMPY_DTYPES[s.dtype] for s in (*export.inputs, *export.outputs)}

    def _cast(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(getattr(torch, self._np_types[name])).contiguous()

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.on_cuda:
            feed = {s.name: self._cast(s.name, inputs[s.name]).cpu().numpy() for s in self.export.inputs}
            names = [s.name for s in self.export.outputs]
            values = self.session.run(names, feed)
            return {n: torch.from_numpy(v).to(self.device) for n, v in zip(names, values, strict=True)}
        import numpy as np

        binding = self.session.io_binding()
        index = self.device.index or 0
        keep: list[torch.Tensor] = []
        for spec in self.export.inputs:
            tensor = self._cast(spec.name, inputs[spec.name].to(self.device))
            keep.append(tensor)
            binding.bind_input(
                spec.name, "cuda", index, np.dtype(self._np_types[spec.name]), tuple(tensor.shape), tensor.data_ptr()
            )
        results: dict[str, torch.Tensor] = {}
        for spec in self.export.outputs:
            out = torch.empty(spec.shape, dtype=getattr(torch, spec.dtype), device=self.device)
            results[spec.name] = out
            binding.bind_output(
                spec.name, "cuda", index, np.dtype(self._np_types[spec.name]), spec.shape, out.data_ptr()
            )
        torch.cuda.current_stream(self.device).synchronize()  # inputs written by torch before ORT's stream reads
        self.session.run_with_iobinding(binding)
        return results


def ort_runner(out_dir: Path, export: ox.SubnetExport, device: torch.device, log: Log, threads: int = 0) -> OrtRunner:
    """An onnxruntime runner over one exported graph of ``out_dir`` (any precision: inputs are cast to its types)."""
    return OrtRunner(out_dir / export.file, export, device, log, threads=threads)


class TensorRTRunner:
    """One TensorRT engine (hash-verified on load) on torch CUDA tensors; inputs cast to the engine's dtypes."""

    def __init__(self, engine_path: Path, cache: EngineCache, key_manifest: Path) -> None:
        from alpamayo_ros.runtime.tensorrt_engines import EngineRunner

        manifest = cache.read_manifest(key_manifest)
        self.runner = EngineRunner(engine_path, manifest.engine_sha256)
        self.dtypes = {s.name: getattr(torch, s.dtype) for s in self.runner.inputs}

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cast = {n: inputs[n].to(device="cuda", dtype=d) for n, d in self.dtypes.items()}
        return self.runner(**cast)


# -- stages --------------------------------------------------------------------------------------------------------
class AcceleratedStages:
    """Drop-in ``encode_images`` / ``expert_step`` for an AlpamayoR1 instance, backed by two runners."""

    def __init__(
        self, model: AlpamayoR1, deployment: ox.Deployment, vision: SubnetRunner, expert: SubnetRunner
    ) -> None:
        self.model = model
        self.deployment = deployment
        self.vision = vision
        self.expert = expert
        self.grid = deployment.grid_tensor()
        self.vision_aux = {k: v.to(model.device) for k, v in ox.vision_aux_inputs(model, deployment).items()}
        self.num_deepstack = len(model.vlm.model.visual.deepstack_visual_indexes)
        self._ctx: ExpertContext | None = None
        self._prefix: dict[str, torch.Tensor] = {}
        self.calls = {"vision": 0, "expert_step": 0}  # proves the torch backend went through these stages

    def encode_images(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> VisionOutput:
        if not torch.equal(image_grid_thw.cpu().to(torch.int64), self.grid):
            got = [tuple(int(v) for v in row) for row in image_grid_thw.tolist()]
            raise ValueError(
                f"the vision export is for {self.deployment.num_images} images of grid "
                f"{self.deployment.image_grid_thw}, got grids {sorted(set(got))} x {len(got)}: "
                "rebuild with `alpamayo-ros build-engines --camera-size HxW`"
            )
        self.calls["vision"] += 1
        out = self.vision({"pixel_values": pixel_values.to(self.model.device), **self.vision_aux})
        dtype = self.model.dtype
        deepstack = [out[f"deepstack_{i}"].to(dtype) for i in range(self.num_deepstack)]
        return VisionOutput(image_embeds=out["image_embeds"].to(dtype), deepstack=deepstack)

    def _prepare(self, ctx: ExpertContext) -> None:
        """Once per inference: static prefix buffers, mask and rotary tables (constant over the Euler steps)."""
        layers = ctx.cache.layers
        hidden = ctx.attention_mask[:, 0, 0, : ctx.prefix_len] < 0
        rows = int(hidden.shape[0])
        if rows != self.deployment.num_samples:
            raise ValueError(f"the expert export is for {self.deployment.num_samples} sample rows, got {rows}")
        keys, values, visible = ox.prefix_buffers(
            [layer.keys for layer in layers],
            [layer.values for layer in layers],
            hidden,
            self.deployment.prefix_capacity,
            self.model.dtype,
        )
        cos, sin = ox.expert_rope(self.model, ctx.position_ids)
        self._prefix = {
            "prefix_keys": keys,
            "prefix_values": values,
            "prefix_visible": visible,
            "rope_cos": cos,
            "rope_sin": sin,
        }
        self._ctx = ctx

    def expert_step(self, ctx: ExpertContext, x: torch.Tensor, t: torch.Tensor) -> ExpertStep:
        self.calls["expert_step"] += 1
        if ctx is not self._ctx:
            self._prepare(ctx)
        velocity = self.expert({"x": x, "t": t, **self._prefix})["velocity"].to(x.device, torch.float32)
        empty = x.new_empty(0)  # the exported graph returns only the velocity
        return ExpertStep(x=x, t=t, in_proj=empty, hidden=empty, velocity=velocity)

    def release(self) -> None:
        """Drop the per-inference prefix buffers (hundreds of MB at full size)."""
        self._ctx = None
        self._prefix = {}

    def install(self) -> None:
        """Route the model's two stages through the runners (instance attributes shadow the methods)."""
        self.model.__dict__["encode_images"] = self.encode_images
        self.model.__dict__["expert_step"] = self.expert_step

    def uninstall(self) -> None:
        self.model.__dict__.pop("encode_images", None)
        self.model.__dict__.pop("expert_step", None)


class AcceleratedDrivingModel:
    """The torch DrivingModel with vision and expert step on onnxruntime or TensorRT."""

    def __init__(self, inner: AlpamayoDrivingModel, stages: AcceleratedStages, backend: str) -> None:
        self.inner = inner
        self.stages = stages
        self.backend = backend
        stages.install()

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def predict(self, sample: ModelInput) -> Prediction:
        before = dict(self.stages.calls)
        try:
            prediction = self.inner.predict(sample)
        finally:
            self.stages.release()
        skipped = [name for name, count in self.stages.calls.items() if count == before[name]]
        if skipped:  # e.g. the torch backend switched to a rollout that does not call the model's stage methods
            raise RuntimeError(f"the {self.backend} stages {skipped} were bypassed by the torch rollout")
        return prediction

    def close(self) -> None:
        self.stages.uninstall()
        self.stages.release()
        self.inner.close()


def _load_cpu_float32(spec: ModelSpec, driving: AlpamayoDrivingModel) -> Callable[[], AlpamayoR1]:
    def load() -> AlpamayoR1:
        model = driving.model
        if model is not None and model.device.type == "cpu" and model.dtype == torch.float32:
            return model
        cpu_spec = dataclasses.replace(spec, backend="torch", device="cpu", dtype="float32")
        cpu_model = load_torch_model(cpu_spec).model
        assert cpu_model is not None
        return cpu_model

    return load


def tensorrt_runners(out_dir: Path, manifest: ox.ExportManifest, log: Log) -> tuple[SubnetRunner, SubnetRunner]:
    from alpamayo_ros.runtime.tensorrt_build import EngineChoice
    from alpamayo_ros.runtime.tensorrt_engines import ensure_engines

    choice = EngineChoice.read(out_dir)
    engines = ensure_engines(out_dir, manifest, choice.precisions, choice.typing, log)
    cache = EngineCache(out_dir / "engines")
    vision, expert = (engines[name] for name in (ox.VISION, ox.EXPERT))
    return (
        TensorRTRunner(vision, cache, vision.with_suffix(".json")),
        TensorRTRunner(expert, cache, expert.with_suffix(".json")),
    )


def require_tensorrt() -> None:
    """Raise TensorRTUnavailableError unless ``tensorrt`` imports and torch sees a CUDA GPU."""
    from alpamayo_ros.runtime.tensorrt_engines import TensorRTUnavailableError

    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        raise TensorRTUnavailableError(
            f"the tensorrt backend needs NVIDIA TensorRT >= 10 and a CUDA GPU; import failed: {exc}"
        ) from exc
    if not torch.cuda.is_available():
        raise TensorRTUnavailableError("the tensorrt backend needs a CUDA GPU; torch sees none")


def load_accelerated_model(spec: ModelSpec, log: Log = LOG.info) -> DrivingModel:
    """The torch model with vision and expert step on ``spec.backend`` (onnxruntime | tensorrt).

    Raises:
        ValueError: wrong backend; TensorRTUnavailableError: tensorrt backend without TensorRT/GPU.
    """
    spec.validate()
    if spec.backend not in ("onnxruntime", "tensorrt"):
        raise ValueError(f"load_accelerated_model serves onnxruntime and tensorrt, not {spec.backend!r}")
    if spec.backend == "tensorrt":
        require_tensorrt()  # fail before loading weights when TensorRT or the GPU is missing
    driving = load_torch_model(dataclasses.replace(spec, backend="torch"))
    model = driving.model
    assert model is not None
    out_dir = default_engine_dir(spec, driving.info)
    deployment = choose_deployment(deployment_for(driving), out_dir)
    precisions: tuple[str, ...] = (spec.onnx_precision,) if spec.onnx_precision != "fp32" else ()
    if spec.backend == "tensorrt":
        from alpamayo_ros.runtime.tensorrt_build import EngineChoice

        precisions = EngineChoice.read(out_dir).graph_precisions()
    manifest = ox.ensure_exports(
        deployment, out_dir, driving.info.version, _load_cpu_float32(spec, driving), log, precisions=precisions
    )
    if spec.backend == "onnxruntime":
        threads = spec.cpu_threads  # the torch side got the same via load_torch_model (CPU device)
        graphs = (manifest.graph(name, spec.onnx_precision) for name in (ox.VISION, ox.EXPERT))
        vision: SubnetRunner
        expert: SubnetRunner
        vision, expert = (ort_runner(out_dir, graph, model.device, log, threads) for graph in graphs)
        if threads:
            log(f"onnxruntime sessions with {threads} intra-op thread(s)")
    else:
        vision, expert = tensorrt_runners(out_dir, manifest, log)
    log(f"{spec.backend} backend: vision and expert step from {out_dir}; prefill and decode in PyTorch")
    return AcceleratedDrivingModel(driving, AcceleratedStages(model, manifest.deployment, vision, expert), spec.backend)
