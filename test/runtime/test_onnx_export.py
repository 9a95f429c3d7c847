"""ONNX export of the vision encoder and the expert step: wrappers vs the model, onnxruntime vs goldens, manifest, CLI.

Tolerances (float32 everywhere):
* graph module (PyTorch) vs the model's own stage: 1e-5 on O(1) embeddings (measured 1.3e-6), 1e-8 on O(0.01)
  velocities: the same weights and ops, only the attention layout differs (batched per image / grouped-query matmul
  vs per-image SDPA).
* onnxruntime vs the official goldens: fixture README tolerances, image embeddings atol 1e-4 and expert velocities
  atol 1e-6; onnxruntime vs PyTorch inside the export: ``runtime.onnx.TOLERANCES``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from transformers.cache_utils import DynamicCache

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, ExpertContext
from alpamayo_ros.runtime import onnx as ox

torch.set_num_threads(min(2, torch.get_num_threads()))
GOLDEN_PREFIX = 3029  # official_tiny_a: prompt 3006 + 24 generated - 1
DEPLOYMENT = ox.Deployment(num_images=16, image_grid_thw=(1, 20, 36), prefix_capacity=GOLDEN_PREFIX + 11)


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def model(official_tiny_a: Path) -> AlpamayoR1:
    from alpamayo_ros.model.loader import load_checkpoint

    loaded, _ = load_checkpoint(official_tiny_a, "cpu", torch.float32)
    return loaded


@pytest.fixture(scope="module")
def golden(official_tiny_a: Path) -> dict[str, dict[str, np.ndarray]]:
    g = official_tiny_a / "golden"
    return {name: _npz(g / f"{name}.npz") for name in ("processor_outputs", "prefill", "expert", "prompt_kv_cache")}


@pytest.fixture(scope="module")
def exported(model: AlpamayoR1, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ox.ExportManifest]:
    out = tmp_path_factory.mktemp("onnx")
    with torch.no_grad():
        manifest = ox.export_all(model, DEPLOYMENT, out, model_fingerprint="fixture-a")
    return out, manifest


def _golden_prefix(
    golden: dict[str, dict[str, np.ndarray]], layers: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    kv = golden["prompt_kv_cache"]
    keys = [torch.from_numpy(kv[f"layer{i}_keys"]) for i in range(layers)]
    values = [torch.from_numpy(kv[f"layer{i}_values"]) for i in range(layers)]
    return keys, values


def test_vision_wrapper_matches_model(model: AlpamayoR1, golden: dict[str, dict[str, np.ndarray]]) -> None:
    pixels = torch.from_numpy(golden["processor_outputs"]["pixel_values"])
    aux = ox.vision_aux_inputs(model, DEPLOYMENT)
    with torch.no_grad():
        reference = model.encode_images(pixels, DEPLOYMENT.grid_tensor())
        out = ox.VisionGraph(model, DEPLOYMENT)(pixels, **aux)
    torch.testing.assert_close(out[0], reference.image_embeds, atol=1e-5, rtol=1e-5)
    for got, want in zip(out[1:], reference.deepstack, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_expert_wrapper_matches_model_step_with_hidden_columns(
    model: AlpamayoR1, golden: dict[str, dict[str, np.ndarray]]
) -> None:
    """The torch path's additive mask hides reasoning after <|traj_future_start|>; the prefix mask must too."""
    keys, values = _golden_prefix(golden, len(model.expert.layers))
    cache = DynamicCache()
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        cache.update(k.clone(), v.clone(), i)
    expert = golden["expert"]
    n = model.n_action_tokens
    offset = GOLDEN_PREFIX - 9  # pretend the marker came 9 tokens before the end
    positions = torch.from_numpy(expert["expert_position_ids"])
    mask = torch.zeros(1, 1, n, GOLDEN_PREFIX + n)
    mask[..., offset:GOLDEN_PREFIX] = torch.finfo(torch.float32).min
    ctx = ExpertContext(cache, GOLDEN_PREFIX, positions, mask, torch.tensor([offset]))
    x, t = torch.from_numpy(expert["step_x"][3]), torch.from_numpy(expert["step_t"][3])
    hidden = mask[:, 0, 0, :GOLDEN_PREFIX] < 0
    k_buf, v_buf, visible = ox.prefix_buffers(keys, values, hidden, DEPLOYMENT.prefix_capacity, torch.float32)
    cos, sin = ox.expert_rope(model, positions)
    with torch.no_grad():
        want = model.expert_step(ctx, x, t).velocity
        got = ox.ExpertStepGraph(model, DEPLOYMENT)(x, t, k_buf, v_buf, visible, cos, sin)
    torch.testing.assert_close(got, want, atol=1e-8, rtol=0)
    unmasked = torch.from_numpy(expert["step_velocity"][3])
    assert (got - unmasked).abs().max() > 1e-6  # the hidden columns did change the result


def test_onnxruntime_vision_reproduces_goldens(
    exported: tuple[Path, ox.ExportManifest], model: AlpamayoR1, golden: dict[str, dict[str, np.ndarray]]
) -> None:
    out, manifest = exported
    session = ox.ort_session(out / manifest.graph(ox.VISION).file)
    feed = {k: v.numpy() for k, v in ox.vision_aux_inputs(model, DEPLOYMENT).items()}
    feed["pixel_values"] = golden["processor_outputs"]["pixel_values"]
    embeds, deep0, deep1 = session.run(["image_embeds", "deepstack_0", "deepstack_1"], feed)
    prefill = golden["prefill"]
    np.testing.assert_allclose(embeds, prefill["image_embeds"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(deep0, prefill["deepstack_image_embeds"][0], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(deep1, prefill["deepstack_image_embeds"][1], atol=1e-4, rtol=1e-4)


def test_onnxruntime_expert_steps_reproduce_goldens(
    exported: tuple[Path, ox.ExportManifest], model: AlpamayoR1, golden: dict[str, dict[str, np.ndarray]]
) -> None:
    """Each golden Euler step fed the golden x and t (velocity atol 1e-6, fixture README); then the whole
    10-step trajectory integrated from the noise through the graph (sampled_action atol 1e-5, as the torch parity
    test: the Fourier features at up to 100 Hz amplify float32 differences of x between steps)."""
    out, manifest = exported
    session = ox.ort_session(out / manifest.graph(ox.EXPERT).file)
    keys, values = _golden_prefix(golden, len(model.expert.layers))
    expert = golden["expert"]
    hidden = torch.from_numpy(expert["expert_attention_mask"][:, 0, 0, :GOLDEN_PREFIX] < 0)
    k_buf, v_buf, visible = ox.prefix_buffers(keys, values, hidden, DEPLOYMENT.prefix_capacity, torch.float32)
    cos, sin = ox.expert_rope(model, torch.from_numpy(expert["expert_position_ids"]))
    fixed = {
        "prefix_keys": k_buf.numpy(),
        "prefix_values": v_buf.numpy(),
        "prefix_visible": visible.numpy(),
        "rope_cos": cos.numpy(),
        "rope_sin": sin.numpy(),
    }
    for step in range(10):
        feed = {"x": expert["step_x"][step], "t": expert["step_t"][step], **fixed}
        (velocity,) = session.run(["velocity"], feed)
        np.testing.assert_allclose(velocity, expert["step_velocity"][step], atol=1e-6, rtol=0)
    x = expert["initial_noise"]
    for step in range(10):
        (velocity,) = session.run(["velocity"], {"x": x, "t": expert["step_t"][step], **fixed})
        x = x + 0.1 * velocity
    np.testing.assert_allclose(x, expert["sampled_action"], atol=1e-5, rtol=0)


def test_export_manifest_contents(exported: tuple[Path, ox.ExportManifest]) -> None:
    out, _ = exported
    body = json.loads((out / ox.EXPORT_MANIFEST).read_text())
    assert body["model_fingerprint"] == "fixture-a"
    assert body["opset"] == ox.OPSET
    assert body["deployment"] == {
        "num_images": 16,
        "image_grid_thw": [1, 20, 36],
        "prefix_capacity": GOLDEN_PREFIX + 11,
        "num_samples": 1,
    }
    vision, expert = body["subnets"]["vision"], body["subnets"]["expert_step"]
    assert [(i["name"], i["shape"], i["dtype"]) for i in vision["inputs"]] == [
        ("pixel_values", [11520, 1536], "float32"),
        ("pos_embeds", [11520, 32], "float32"),
        ("rope_cos", [11520, 16], "float32"),
        ("rope_sin", [11520, 16], "float32"),
    ]
    assert [(o["name"], o["shape"]) for o in vision["outputs"]] == [
        ("image_embeds", [2880, 64]),
        ("deepstack_0", [2880, 64]),
        ("deepstack_1", [2880, 64]),
    ]
    cap = GOLDEN_PREFIX + 11
    assert [(i["name"], i["shape"], i["dtype"]) for i in expert["inputs"]] == [
        ("x", [1, 64, 2], "float32"),
        ("t", [1, 1, 1], "float32"),
        ("prefix_keys", [2, 1, 2, cap, 16], "float32"),
        ("prefix_values", [2, 1, 2, cap, 16], "float32"),
        ("prefix_visible", [1, cap], "bool"),
        ("rope_cos", [1, 64, 16], "float32"),
        ("rope_sin", [1, 64, 16], "float32"),
    ]
    assert expert["outputs"] == [{"name": "velocity", "shape": [1, 64, 2], "dtype": "float32"}]
    for sub in (vision, expert):
        atol, rtol = sub["tolerance"]["atol"], sub["tolerance"]["rtol"]
        assert max(sub["max_abs_error"].values()) <= atol + rtol  # outputs here are O(1) or smaller
    # the graph itself says where it came from, so any engine-cache key follows the model
    proto = onnx.load(str(out / vision["file"]), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["alpamayo_ros.model_fingerprint"] == "fixture-a"
    assert {i.name for i in proto.graph.input} == {"pixel_values", "pos_embeds", "rope_cos", "rope_sin"}
    assert proto.opset_import[0].version == ox.OPSET


def test_manifest_problems_name_each_reason(exported: tuple[Path, ox.ExportManifest], tmp_path: Path) -> None:
    out, _ = exported
    assert ox.manifest_problems(out, "fixture-a", DEPLOYMENT) == []
    assert ox.manifest_problems(tmp_path, "fixture-a", DEPLOYMENT) == [f"no {ox.EXPORT_MANIFEST} in {tmp_path}"]
    [reason] = ox.manifest_problems(out, "other-model", DEPLOYMENT)
    assert "exported from model 'fixture-a', running 'other-model'" in reason
    bigger = ox.Deployment(16, (1, 20, 36), GOLDEN_PREFIX + 100)
    assert "exported for" in ox.manifest_problems(out, "fixture-a", bigger)[0]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in out.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with (copy / "expert_step.onnx").open("ab") as handle:
        handle.write(b"\0")
    assert ox.manifest_problems(copy, "fixture-a", DEPLOYMENT) == [
        "expert_step.onnx hash differs from the manifest (modified or truncated)"
    ]


def test_ensure_exports_reuses_valid_exports(exported: tuple[Path, ox.ExportManifest]) -> None:
    out, manifest = exported
    lines: list[str] = []

    def must_not_load() -> AlpamayoR1:
        raise AssertionError("valid exports were re-exported")

    again = ox.ensure_exports(DEPLOYMENT, out, "fixture-a", must_not_load, lines.append)
    assert again.graph(ox.EXPERT).onnx_sha256 == manifest.graph(ox.EXPERT).onnx_sha256
    assert lines == [f"using ONNX exports in {out}"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alpamayo_ros.cli", "build-engines", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow  # exports fp32 and bf16 graphs of the tiny preset through the CLI (~90 s on two cores)
def test_cli_export_only_on_tiny_preset(tmp_path: Path) -> None:
    out = tmp_path / "engines"
    result = _cli("--model", "tiny", "--out", str(out), "--export-only", "--max-reasoning-tokens", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vision: onnxruntime (CPU) matches PyTorch" in result.stdout
    assert "expert_step: onnxruntime (CPU) matches PyTorch" in result.stdout
    body = json.loads((out / ox.EXPORT_MANIFEST).read_text())
    assert body["model_fingerprint"] == "preset-tiny-seed0"
    assert body["deployment"]["prefix_capacity"] == 3006 + 8  # prompt of 16 images at 320x576 + reasoning budget
    assert (out / "vision.onnx").is_file() and (out / "expert_step.onnx").is_file()
    # the default engine precision (bf16, strongly typed) needs bf16 graphs: exported beside the float32 ones, and
    # checked through PyTorch (onnxruntime's CPU provider has no bfloat16 matmul), which the manifest records
    assert body["subnets"]["expert_step.bf16"]["verified_with"] == "pytorch"
    assert body["subnets"]["vision"]["verified_with"] == "onnxruntime-cpu"
    if _tensorrt_usable():
        return
    # without --export-only the exports are reused and the missing TensorRT is an error that says so
    result = _cli("--model", "tiny", "--out", str(out), "--max-reasoning-tokens", "8")
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"using ONNX exports in {out}" in result.stdout
    assert "TensorRT engines need TensorRT" in result.stderr


def test_cli_refuses_fp8_before_loading(tmp_path: Path) -> None:
    result = _cli("--model", "tiny", "--out", str(tmp_path / "e"), "--precision-expert", "fp8")
    assert result.returncode != 0
    assert "fp8 is not offered for TensorRT yet" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "e").exists()


def _tensorrt_usable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()
