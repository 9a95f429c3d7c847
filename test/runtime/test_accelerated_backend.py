"""The onnxruntime backend behaves like the torch backend: same interface, same reasoning, same trajectories.

Tolerance for a whole inference (tiny preset, float32 CPU, 2 samples): waypoints 1e-4 m and rotations 1e-5, the
fixture README's tolerances for pred_xyz / pred_rot. Only the vision encoder and the 10 expert steps run in
onnxruntime; their float32 differences (~1e-7 on embeddings, ~1e-8 on velocities) must neither flip a sampled
reasoning token nor move a waypoint measurably (measured: 1.2e-7 m).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC
from alpamayo_ros.core.types import DrivingModel, EgoHistory, ModelInput, Prediction
from alpamayo_ros.runtime import onnx as ox
from alpamayo_ros.runtime.registry import load_model

torch.set_num_threads(min(2, torch.get_num_threads()))


def _sample(t0_ns: int = 1_000, height: int = 320, width: int = 576) -> ModelInput:
    rng = np.random.default_rng(7)
    images = {cam: rng.integers(0, 256, (4, height, width, 3), dtype=np.uint8) for cam in ALPAMAYO_R1_CAMERAS}
    xyz = np.zeros((16, 3))
    xyz[:, 0] = np.linspace(-15.0, 0.0, 16)
    history = EgoHistory(xyz=xyz, rotation=np.tile(np.eye(3), (16, 1, 1)), offsets_sec=np.linspace(-1.5, 0.0, 16))
    return ModelInput(t0_ns=t0_ns, images=images, frame_offsets_sec=ALPAMAYO_R1_FRAME_OFFSETS_SEC, ego_history=history)


def _spec(backend: str, engine_dir: Path, **changes: object) -> ModelSpec:
    base: dict[str, object] = {
        "backend": backend,
        "model_path": "tiny",
        "device": "cpu",
        "max_reasoning_tokens": 6,
        "num_samples": 2,
        "engine_dir": str(engine_dir),
    }
    base.update(changes)
    return ModelSpec(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="module")
def predictions(engine_dir: Path) -> dict[str, Prediction]:
    sample = _sample()
    out: dict[str, Prediction] = {}
    for backend in ("torch", "onnxruntime"):
        model = load_model(_spec(backend, engine_dir))
        assert isinstance(model, DrivingModel)
        out[backend] = model.predict(sample)
        model.close()
    return out


def test_onnxruntime_backend_reproduces_torch_backend(predictions: dict[str, Prediction]) -> None:
    torch_pred, ort_pred = predictions["torch"], predictions["onnxruntime"]
    assert ort_pred.xyz.shape == (2, 64, 3) and ort_pred.rotation.shape == (2, 64, 3, 3)
    assert ort_pred.reasoning == torch_pred.reasoning
    assert ort_pred.num_generated_tokens == torch_pred.num_generated_tokens
    assert ort_pred.truncated == torch_pred.truncated
    np.testing.assert_allclose(ort_pred.xyz, torch_pred.xyz, atol=1e-4, rtol=0)
    np.testing.assert_allclose(ort_pred.rotation, torch_pred.rotation, atol=1e-5, rtol=0)
    assert not np.allclose(ort_pred.xyz[0], ort_pred.xyz[1])  # two samples, two noises: a real samples dimension
    assert ort_pred.timings.vision_ms > 0 and ort_pred.timings.action_ms > 0


def test_stages_are_bypass_checked(engine_dir: Path) -> None:
    """If the torch rollout stopped calling the model's stage methods, predict must fail, not run torch silently."""
    model = load_model(_spec("onnxruntime", engine_dir))
    try:
        stages = model.stages  # type: ignore[attr-defined]
        stages.uninstall()  # what a rollout that bypasses encode_images / expert_step looks like
        with pytest.raises(RuntimeError, match="bypassed by the torch rollout"):
            model.predict(_sample())
    finally:
        model.close()


def test_info_and_exports(predictions: dict[str, Prediction], engine_dir: Path) -> None:
    manifest = ox.ExportManifest.read(engine_dir)
    assert manifest.model_fingerprint == "preset-tiny-seed0"
    assert manifest.deployment == ox.Deployment(16, (1, 20, 36), 3006 + 6, 2)


@pytest.mark.parametrize("threads", [3, 0])
def test_onnxruntime_sessions_get_the_spec_cpu_threads(
    predictions: dict[str, Prediction], engine_dir: Path, threads: int
) -> None:
    """ModelSpec.cpu_threads reaches both onnxruntime sessions (intra-op threads); 0 leaves onnxruntime's default."""
    model = load_model(_spec("onnxruntime", engine_dir, cpu_threads=threads))
    try:
        stages = model.stages  # type: ignore[attr-defined]
        for runner in (stages.vision, stages.expert):
            assert runner.session.get_session_options().intra_op_num_threads == threads
    finally:
        model.close()


def test_stale_exports_are_reexported_with_the_reason(
    predictions: dict[str, Prediction], engine_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another seed is another model: the exports in the folder no longer match and the log line says why."""
    with caplog.at_level(logging.INFO, logger="alpamayo_ros.runtime.accelerated"):
        model = load_model(_spec("onnxruntime", engine_dir, seed=1, num_samples=1))
    try:
        messages = "\n".join(r.getMessage() for r in caplog.records)
        assert "exported from model 'preset-tiny-seed0', running 'preset-tiny-seed1'" in messages
        assert "num_samples=2" in messages  # the deployment change is named too
        assert ox.ExportManifest.read(engine_dir).model_fingerprint == "preset-tiny-seed1"
        with pytest.raises(ValueError, match=r"vision export is for 16 images of grid \(1, 20, 36\)"):
            model.predict(_sample(height=256, width=256))  # square frames: another grid than the export's
    finally:
        model.close()


def test_tensorrt_backend_without_tensorrt_fails_before_loading(engine_dir: Path) -> None:
    pytest.importorskip("alpamayo_ros.runtime.tensorrt_engines")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here: covered by test_tensorrt_engines")
    from alpamayo_ros.runtime.tensorrt_engines import TensorRTUnavailableError

    with pytest.raises(TensorRTUnavailableError, match="TensorRT"):
        load_model(_spec("tensorrt", engine_dir))
