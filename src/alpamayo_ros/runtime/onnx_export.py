"""ONNX export of the two sub-networks TensorRT accelerates: the vision encoder and one action-expert step.

Why explicit-tensor wrappers instead of exporting the transformers modules: the Qwen3-VL vision tower computes its
rotary table, position-embedding interpolation and per-image attention split on the host (``.tolist()``, ``arange``
over traced values, int32/int64 ``cu_seqlens``), and the expert reads a ``DynamicCache`` object and crops it after
each step. Neither traces into a static graph. The wrappers below call the model's own submodules (so the weights
are the model's, and a checkpoint change changes the export) but take everything shape- or position-dependent as
plain tensors computed once per deployment on the host:

* vision: ``(pixel_values, pos-embed interpolation indices/weights, rotary cos/sin) -> (image_embeds, deepstack..)``.
  All images of a deployment have the same size, so attention is one batched (images, heads, patches, patches)
  product with no mask and no varlen bookkeeping.
* expert step: ``(x_t, t, prefix K/V [layers, rows, kv_heads, capacity, head_dim], additive prefix mask
  [rows, capacity], action-token rotary cos/sin) -> velocity``. The prefix is a static-capacity buffer; columns past
  the valid length (and the reasoning tokens after ``<|traj_future_start|>``) are hidden by the mask, exactly like
  the torch path's additive mask. Grouped-query attention is a grouped matmul (no K/V repeat). The 10 Euler steps
  stay outside the graph: the same engine runs every step.

Shapes are static per deployment (number of images, image grid, prefix capacity, samples); batch is 1 input with
``num_samples`` rows. Graphs are exported in float32 with the TorchScript exporter (``dynamo=False``; it needs no
onnxscript and traces these explicit graphs robustly) at opset 18, which TensorRT 10 parses; reduced precision
(bf16/fp16/fp8) is TensorRT's builder choice at engine-build time. Every export is checked against the PyTorch
wrapper with onnxruntime (CPU) before it is recorded in the export manifest.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.runtime.engine_cache import TensorSpec, sha256_file

LOG = logging.getLogger(__name__)
Log = Callable[[str], None]

OPSET = 18
EXPORT_MANIFEST = "export_manifest.json"
EXPORT_MANIFEST_VERSION = 1
VISION = "vision"
EXPERT = "expert_step"
SUBNETS: tuple[str, ...] = (VISION, EXPERT)

# onnxruntime (CPU, float32) vs the PyTorch wrapper (float32), same inputs: max |err| <= atol + rtol * max |ref|.
# Only summation order differs (ORT's fused LayerNorm/MatMul/Softmax kernels vs ATen), i.e. a few float32 ulps per
# op, amplified by depth. Measured on the tiny preset: vision ~1e-6 (outputs O(1)), expert velocity ~1e-8 (outputs
# O(1e-2)); the budgets below leave two orders of magnitude and equal the fixture tolerances for image embeddings
# (1e-4) and velocities (1e-6 absolute on ~0.01-scale values, here written relative).
TOLERANCES: dict[str, tuple[float, float]] = {VISION: (1e-4, 1e-4), EXPERT: (1e-6, 1e-4)}


class ExportError(RuntimeError):
    """An export failed or does not reproduce PyTorch within its tolerance."""


# -- deployment (static shapes) -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deployment:
    """The static shapes every exported graph (and engine) is specialised for."""

    num_images: int  # 16 for Alpamayo-R1 (4 cameras x 4 frames)
    image_grid_thw: tuple[int, int, int]  # per image, in patches, e.g. (1, 20, 36) for 320x576
    prefix_capacity: int  # >= prompt tokens + reasoning budget (the expert's static KV prefix)
    num_samples: int = 1  # rows of the expert step (batch 1 input x samples)

    @property
    def patches_per_image(self) -> int:
        t, h, w = self.image_grid_thw
        return t * h * w

    @property
    def num_patches(self) -> int:
        return self.num_images * self.patches_per_image

    def grid_tensor(self) -> torch.Tensor:
        return torch.tensor([list(self.image_grid_thw)] * self.num_images, dtype=torch.int64)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "image_grid_thw": list(self.image_grid_thw)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Deployment:
        t, h, w = (int(v) for v in data["image_grid_thw"])
        return Deployment(
            num_images=int(data["num_images"]),
            image_grid_thw=(t, h, w),
            prefix_capacity=int(data["prefix_capacity"]),
            num_samples=int(data["num_samples"]),
        )


# -- vision --------------------------------------------------------------------------------------------------------
def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def vision_aux_inputs(model: AlpamayoR1, deployment: Deployment) -> dict[str, torch.Tensor]:
    """Host-side, once per deployment: position-embedding interpolation and rotary tables for all patches.

    ``pos_index``/``pos_weight`` (4, S): bilinear corners into the learned 48x48 position table, already in the
    merge-block patch order the tower uses; ``rope_cos``/``rope_sin`` (S, head_dim) float32.
    """
    visual = model.vlm.model.visual
    side = int(visual.num_grid_per_side)
    merge = int(visual.spatial_merge_size)
    t, h, w = deployment.image_grid_thw
    hi = torch.linspace(0, side - 1, h)
    wi = torch.linspace(0, side - 1, w)
    hf, wf = hi.int(), wi.int()
    hc, wc = (hf + 1).clip(max=side - 1), (wf + 1).clip(max=side - 1)
    dh, dw = (hi - hf)[:, None], (wi - wf)[None, :]
    index = torch.stack(
        [
            hf[:, None] * side + wf[None],
            hf[:, None] * side + wc[None],
            hc[:, None] * side + wf[None],
            hc[:, None] * side + wc[None],
        ]
    ).reshape(4, h * w)
    weight = torch.stack([(1 - dh) * (1 - dw), (1 - dh) * dw, dh * (1 - dw), dh * dw]).reshape(4, h * w)
    # raster (t, h, w) -> merge-block order (t, h/m, w/m, m, m), as the patch rows are laid out
    order = torch.arange(t * h * w).reshape(t, h // merge, merge, w // merge, merge).permute(0, 1, 3, 2, 4).reshape(-1)
    index = index.repeat(1, t)[:, order].repeat(1, deployment.num_images)
    weight = weight.repeat(1, t)[:, order].repeat(1, deployment.num_images)
    with torch.no_grad():
        freqs = visual.rot_pos_emb(deployment.grid_tensor().to(visual.rotary_pos_emb.inv_freq.device)).float().cpu()
    emb = torch.cat((freqs, freqs), dim=-1)
    return {
        "pos_index": index.to(torch.int64).contiguous(),
        "pos_weight": weight.to(torch.float32).contiguous(),
        "rope_cos": emb.cos().contiguous(),
        "rope_sin": emb.sin().contiguous(),
    }


class VisionEncoderWrapper(nn.Module):
    """Qwen3-VL vision tower + mergers over equal-size images with explicit tensor inputs (see module doc).

    ``attention="explicit"`` writes attention as matmul/softmax/matmul (what the exporter and TensorRT's MHA fusion
    want); ``"sdpa"`` uses ``scaled_dot_product_attention`` (the PyTorch fast path: one batched flash call per layer).
    """

    def __init__(self, model: AlpamayoR1, deployment: Deployment, attention: str = "explicit") -> None:
        super().__init__()
        if attention not in ("explicit", "sdpa"):
            raise ValueError(f"attention must be explicit or sdpa, got {attention!r}")
        self.visual = model.vlm.model.visual
        self.num_images = deployment.num_images
        self.patches = deployment.patches_per_image
        self.attention = attention
        cfg = self.visual.config
        self.heads = int(cfg.num_heads)
        self.head_dim = int(cfg.hidden_size) // self.heads
        self.deepstack_layers = [int(i) for i in self.visual.deepstack_visual_indexes]

    @property
    def output_names(self) -> list[str]:
        return ["image_embeds"] + [f"deepstack_{i}" for i in range(len(self.deepstack_layers))]

    def _attention(self, attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        n, p, heads, d = self.num_images, self.patches, self.heads, self.head_dim
        qkv = attn.qkv(x).reshape(n, p, 3, heads, d).permute(2, 0, 3, 1, 4)  # (3, n, heads, p, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        dtype = q.dtype
        q32, k32 = q.float(), k.float()
        q = (q32 * cos + _rotate_half(q32) * sin).to(dtype)
        k = (k32 * cos + _rotate_half(k32) * sin).to(dtype)
        if self.attention == "sdpa":
            out = nn.functional.scaled_dot_product_attention(q, k, v)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) * (d**-0.5)
            probs = torch.softmax(scores.float(), dim=-1).to(dtype)
            out = torch.matmul(probs, v)
        out = out.permute(0, 2, 1, 3).reshape(n * p, heads * d)
        result: torch.Tensor = attn.proj(out)
        return result

    def forward(
        self,
        pixel_values: torch.Tensor,
        pos_index: torch.Tensor,
        pos_weight: torch.Tensor,
        rope_cos: torch.Tensor,
        rope_sin: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        visual = self.visual
        h = visual.patch_embed(pixel_values)
        corners = visual.pos_embed(pos_index) * pos_weight[:, :, None].to(h.dtype)
        h = h + (corners[0] + corners[1] + corners[2] + corners[3])
        shape = (self.num_images, 1, self.patches, self.head_dim)  # broadcast over heads
        cos, sin = rope_cos.float().reshape(shape), rope_sin.float().reshape(shape)
        deepstack: list[torch.Tensor] = []
        for index, block in enumerate(visual.blocks):
            h = h + self._attention(block.attn, block.norm1(h), cos, sin)
            h = h + block.mlp(block.norm2(h))
            if index in self.deepstack_layers:
                deepstack.append(visual.deepstack_merger_list[self.deepstack_layers.index(index)](h))
        return (visual.merger(h), *deepstack)


# -- expert step ---------------------------------------------------------------------------------------------------
class ExpertStepWrapper(nn.Module):
    """One flow-matching velocity evaluation over a static-capacity prefix KV buffer (see module doc).

    ``attention="explicit"`` (export) writes grouped-query attention as matmul/mask/softmax/matmul in float32;
    ``"sdpa"`` (PyTorch fast path) hands the same grouped layout and mask to ``scaled_dot_product_attention``.
    """

    def __init__(self, model: AlpamayoR1, deployment: Deployment, attention: str = "explicit") -> None:
        super().__init__()
        if attention not in ("explicit", "sdpa"):
            raise ValueError(f"attention must be explicit or sdpa, got {attention!r}")
        self.attention = attention
        self.expert = model.expert
        self.action_in_proj = model.action_in_proj
        self.action_out_proj = model.action_out_proj
        cfg = self.expert.config
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(cfg.num_key_value_heads)
        self.head_dim = int(cfg.head_dim)
        self.n_tokens = int(model.n_action_tokens)
        self.rows = deployment.num_samples
        self.capacity = deployment.prefix_capacity

    def _attention(  # noqa: PLR0917 (tensors of one attention call)
        self,
        attn: Any,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> torch.Tensor:
        rows, n, heads, kv, d = self.rows, self.n_tokens, self.heads, self.kv_heads, self.head_dim
        q = attn.q_norm(attn.q_proj(x).view(rows, n, heads, d)).transpose(1, 2)
        k = attn.k_norm(attn.k_proj(x).view(rows, n, kv, d)).transpose(1, 2)
        v = attn.v_proj(x).view(rows, n, kv, d).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        all_k = torch.cat([keys, k], dim=2)  # (rows, kv, capacity + n, d)
        all_v = torch.cat([values, v], dim=2)
        group = heads // kv  # query head h reads kv head h // group (transformers' repeat_kv order)
        qg = q.reshape(rows, kv, group * n, d)
        if self.attention == "sdpa":
            grouped = nn.functional.scaled_dot_product_attention(qg, all_k, all_v, attn_mask=mask.to(qg.dtype))
        else:
            scores = torch.matmul(qg, all_k.transpose(-1, -2)).float() * (d**-0.5) + mask
            grouped = torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), all_v)
        out = grouped.reshape(rows, heads, n, d).transpose(1, 2).reshape(rows, n, heads * d)
        result: torch.Tensor = attn.o_proj(out)
        return result

    def forward(  # noqa: PLR0917 (the graph's inputs, positional for the exporter)
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        prefix_keys: torch.Tensor,
        prefix_values: torch.Tensor,
        prefix_mask: torch.Tensor,
        rope_cos: torch.Tensor,
        rope_sin: torch.Tensor,
    ) -> torch.Tensor:
        h = self.action_in_proj(x, t)
        dtype = h.dtype
        cos, sin = rope_cos.to(dtype)[:, None], rope_sin.to(dtype)[:, None]  # (rows, 1, n, d), as transformers
        # action tokens see each other; made on the mask's device (no host copy, so a CUDA graph can capture it)
        visible = torch.zeros(self.rows, self.n_tokens, dtype=torch.float32, device=prefix_mask.device)
        mask = torch.cat([prefix_mask.float(), visible], dim=-1)[:, None, None, :]
        for index, layer in enumerate(self.expert.layers):
            residual = h
            h = residual + self._attention(
                layer.self_attn, layer.input_layernorm(h), prefix_keys[index], prefix_values[index], mask, cos, sin
            )
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        h = self.expert.norm(h)
        velocity: torch.Tensor = self.action_out_proj(h).float()
        return velocity


def expert_rope(model: AlpamayoR1, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, rows, n) mRoPE positions -> float32 cos/sin (rows, n, head_dim), computed by the expert's rotary module."""
    like = torch.empty(0, dtype=torch.float32, device=position_ids.device)
    cos, sin = model.expert.rotary_emb(like, position_ids)
    return cos.float(), sin.float()


def prefix_buffers(
    keys: Sequence[torch.Tensor],
    values: Sequence[torch.Tensor],
    hidden_columns: torch.Tensor,
    capacity: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-layer cache tensors (rows, kv, L, d) -> stacked static buffers (layers, rows, kv, capacity, d) + mask.

    ``hidden_columns`` (rows, L) bool marks cache columns the action tokens must not see; columns L..capacity are
    padding and hidden too. The mask is float32 additive (finfo.min = hidden), like the torch path's.
    """
    length = int(keys[0].shape[2])
    if length > capacity:
        raise ValueError(f"KV prefix of {length} tokens exceeds the exported capacity {capacity}")
    rows, kv, _, d = keys[0].shape
    k_buf = torch.zeros(len(keys), rows, kv, capacity, d, dtype=dtype, device=keys[0].device)
    v_buf = torch.zeros_like(k_buf)
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        k_buf[i, :, :, :length] = k
        v_buf[i, :, :, :length] = v
    mask = torch.full((rows, capacity), torch.finfo(torch.float32).min, dtype=torch.float32, device=keys[0].device)
    mask[:, :length] = torch.where(hidden_columns.to(mask.device), torch.finfo(torch.float32).min, 0.0)
    return k_buf, v_buf, mask


# -- export + verification -----------------------------------------------------------------------------------------
@dataclass
class SubnetExport:
    """One exported graph as recorded in the export manifest."""

    name: str
    file: str
    onnx_sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_abs_error: dict[str, float] = field(default_factory=dict)  # onnxruntime vs PyTorch, per output
    tolerance: tuple[float, float] = (0.0, 0.0)  # (atol, rtol)
    export_seconds: float = 0.0


@dataclass
class ExportManifest:
    """What build-engines and the accelerated backend agree on: graphs, shapes and the model they came from."""

    model_fingerprint: str
    deployment: Deployment
    subnets: dict[str, SubnetExport]
    opset: int = OPSET
    torch_version: str = torch.__version__
    exported_at_unix: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        def spec(s: TensorSpec) -> dict[str, Any]:
            return {"name": s.name, "shape": list(s.shape), "dtype": s.dtype}

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
                    "onnx_sha256": s.onnx_sha256,
                    "inputs": [spec(i) for i in s.inputs],
                    "outputs": [spec(o) for o in s.outputs],
                    "max_abs_error": s.max_abs_error,
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

        def specs(items: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(str(i["name"]), tuple(int(v) for v in i["shape"]), str(i["dtype"])) for i in items)

        subnets = {
            name: SubnetExport(
                name=name,
                file=str(s["file"]),
                onnx_sha256=str(s["onnx_sha256"]),
                inputs=specs(s["inputs"]),
                outputs=specs(s["outputs"]),
                max_abs_error={k: float(v) for k, v in s.get("max_abs_error", {}).items()},
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


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _float32_cpu_copy(module: nn.Module) -> nn.Module:
    """The wrapper on CPU in float32 (exports are float32; a bf16/GPU model is copied, never modified)."""
    params = list(module.parameters())
    if params and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params):
        return module
    return copy.deepcopy(module).to(device="cpu", dtype=torch.float32)


def example_inputs(model: AlpamayoR1, deployment: Deployment, subnet: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Realistic float32 CPU inputs for tracing and verification (shapes = the deployment's)."""
    gen = torch.Generator().manual_seed(seed)
    if subnet == VISION:
        visual_cfg = model.vlm.model.visual.config
        row = int(visual_cfg.in_channels) * int(visual_cfg.temporal_patch_size) * int(visual_cfg.patch_size) ** 2
        aux = vision_aux_inputs(model, deployment)
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
        k_buf, v_buf, mask = prefix_buffers(keys, values, hidden, cap, torch.float32)
        start = valid - valid // 16 + 7
        positions = (torch.arange(n)[None, :] + start).expand(rows, n)[None].expand(3, rows, n)
        cos, sin = expert_rope(_cpu_model_view(model), positions)
        return {
            "x": torch.randn(rows, n, 2, generator=gen),
            "t": torch.full((rows, 1, 1), 0.3),
            "prefix_keys": k_buf,
            "prefix_values": v_buf,
            "prefix_mask": mask,
            "rope_cos": cos,
            "rope_sin": sin,
        }
    raise ValueError(f"unknown subnet {subnet!r}")


def _cpu_model_view(model: AlpamayoR1) -> AlpamayoR1:
    """The model itself when it lives on the CPU (rotary tables are computed there)."""
    if model.device.type != "cpu":
        raise ExportError("exports are traced on the CPU: pass a CPU model (build-engines loads one)")
    return model


def make_wrapper(model: AlpamayoR1, deployment: Deployment, subnet: str) -> nn.Module:
    if subnet == VISION:
        return VisionEncoderWrapper(model, deployment)
    if subnet == EXPERT:
        return ExpertStepWrapper(model, deployment)
    raise ValueError(f"unknown subnet {subnet!r}")


def _output_names(wrapper: nn.Module, subnet: str) -> list[str]:
    return wrapper.output_names if isinstance(wrapper, VisionEncoderWrapper) else ["velocity"]


def _within(err: float, ref_max: float, tol: tuple[float, float]) -> bool:
    return err <= tol[0] + tol[1] * ref_max


def ort_session(path: Path, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0) -> Any:
    """An onnxruntime session (imported lazily: onnxruntime is only needed by this backend)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))


def export_subnet(
    model: AlpamayoR1,
    deployment: Deployment,
    subnet: str,
    out_dir: Path,
    *,
    model_fingerprint: str,
    verify: bool = True,
    log: Log = LOG.info,
) -> SubnetExport:
    """Trace one wrapper to ``<out_dir>/<subnet>.onnx``, stamp it with the model fingerprint, verify with ORT.

    Raises:
        ExportError: onnxruntime disagrees with PyTorch beyond ``TOLERANCES[subnet]``.
    """
    started = time.monotonic()
    inputs = example_inputs(model, deployment, subnet)
    wrapper = _float32_cpu_copy(make_wrapper(model, deployment, subnet)).eval()
    names = list(inputs)
    outputs = _output_names(wrapper, subnet)
    path = out_dir / f"{subnet}.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, chosen on purpose
        reference = wrapper(**inputs)
        ref = list(reference) if isinstance(reference, tuple) else [reference]
        torch.onnx.export(
            wrapper,
            tuple(inputs[n] for n in names),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=outputs,
            do_constant_folding=True,
        )
    _stamp(
        path,
        {
            "alpamayo_ros.subnet": subnet,
            "alpamayo_ros.model_fingerprint": model_fingerprint,
            "alpamayo_ros.deployment": json.dumps(deployment.to_json(), sort_keys=True),
        },
    )
    export_seconds = time.monotonic() - started
    result = SubnetExport(
        name=subnet,
        file=path.name,
        onnx_sha256=sha256_file(path),
        inputs=tuple(TensorSpec(n, tuple(inputs[n].shape), _dtype_name(inputs[n].dtype)) for n in names),
        outputs=tuple(TensorSpec(n, tuple(r.shape), _dtype_name(r.dtype)) for n, r in zip(outputs, ref, strict=True)),
        tolerance=TOLERANCES[subnet],
        export_seconds=export_seconds,
    )
    log(f"{subnet}: exported {path.name} ({path.stat().st_size / 2**20:.1f} MiB) in {export_seconds:.1f} s")
    if verify:
        session = ort_session(path)
        got = session.run(outputs, {n: inputs[n].numpy() for n in names})
        bad = []
        for name, r, g in zip(outputs, ref, got, strict=True):
            err = float(np.max(np.abs(r.numpy() - g))) if r.numel() else 0.0
            result.max_abs_error[name] = err
            ref_max = float(r.abs().max()) if r.numel() else 0.0
            if not (math.isfinite(err) and _within(err, ref_max, TOLERANCES[subnet])):
                bad.append(f"{name}: max |err| {err:.3g} (max |ref| {ref_max:.3g})")
        if bad:
            atol, rtol = TOLERANCES[subnet]
            raise ExportError(
                f"{subnet}: onnxruntime differs from PyTorch beyond atol {atol} + rtol {rtol}: {'; '.join(bad)}"
            )
        worst = max(result.max_abs_error.values(), default=0.0)
        log(f"{subnet}: onnxruntime (CPU) matches PyTorch, max |err| {worst:.2e}")
    return result


def _stamp(path: Path, props: dict[str, str]) -> None:
    """Record provenance inside the .onnx, so its hash (and any engine cache key) changes with the model."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def export_all(
    model: AlpamayoR1,
    deployment: Deployment,
    out_dir: Path,
    *,
    model_fingerprint: str,
    verify: bool = True,
    log: Log = LOG.info,
) -> ExportManifest:
    """Export (and verify) both sub-networks and write the export manifest."""
    if model.device.type != "cpu":
        raise ExportError("exports are traced on the CPU: pass a CPU model")
    subnets = {
        name: export_subnet(
            model, deployment, name, out_dir, model_fingerprint=model_fingerprint, verify=verify, log=log
        )
        for name in SUBNETS
    }
    manifest = ExportManifest(model_fingerprint=model_fingerprint, deployment=deployment, subnets=subnets)
    manifest.write(out_dir)
    return manifest


def manifest_problems(out_dir: Path, model_fingerprint: str, deployment: Deployment) -> list[str]:
    """Why the exports in ``out_dir`` cannot serve this model and deployment (empty = usable)."""
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
    for name in SUBNETS:
        sub = manifest.subnets.get(name)
        if sub is None:
            problems.append(f"{name} missing from the manifest")
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
) -> ExportManifest:
    """Reuse valid exports, or re-export with a log line naming every reason (never silently).

    ``load_cpu_model`` gives a float32 CPU model with the same weights; it is only called when exporting (a model
    that already runs on the CPU in float32 can be returned as is).
    """
    problems = manifest_problems(out_dir, model_fingerprint, deployment)
    if not problems:
        log(f"using ONNX exports in {out_dir}")
        return ExportManifest.read(out_dir)
    log(f"exporting ONNX to {out_dir} because " + "; ".join(problems))
    return export_all(load_cpu_model(), deployment, out_dir, model_fingerprint=model_fingerprint, log=log)
