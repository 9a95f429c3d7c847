"""The DrivingModel backend end to end: tiny preset and the official fixture through load_torch_model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC
from alpamayo_ros.core.types import DrivingModel, EgoHistory, ModelInput
from alpamayo_ros.runtime.registry import load_model
from alpamayo_ros.runtime.torch_backend import load_torch_model


def _sample(t0_ns: int = 1_000, size: tuple[int, int] = (320, 576), seed: int = 0) -> ModelInput:
    rng = np.random.default_rng(seed)
    images = {cam: rng.integers(0, 256, (4, *size, 3), dtype=np.uint8) for cam in ALPAMAYO_R1_CAMERAS}
    t = np.arange(-15, 1) * 0.1
    xyz = np.stack([8.0 * t, np.zeros_like(t), np.zeros_like(t)], axis=-1)
    rot = np.repeat(np.eye(3)[None], 16, axis=0)
    return ModelInput(t0_ns, images, ALPAMAYO_R1_FRAME_OFFSETS_SEC, EgoHistory(xyz, rot, t))


@pytest.fixture(scope="module")
def tiny_model():  # type: ignore[no-untyped-def]
    model = load_torch_model(ModelSpec(model_path="tiny", max_reasoning_tokens=3, num_samples=2, seed=7))
    yield model
    model.close()


def test_tiny_preset_prediction(tiny_model) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(tiny_model, DrivingModel)
    info = tiny_model.info
    assert info.untrained and info.name == "alpamayo-r1-tiny"
    assert info.cameras == ALPAMAYO_R1_CAMERAS and info.frame_offsets_sec == ALPAMAYO_R1_FRAME_OFFSETS_SEC
    pred = tiny_model.predict(_sample())
    assert pred.num_samples == 2
    assert pred.xyz.shape == (2, 64, 3) and pred.rotation.shape == (2, 64, 3, 3)
    assert np.isfinite(pred.xyz).all()
    np.testing.assert_allclose(
        pred.rotation @ pred.rotation.transpose(0, 1, 3, 2), np.broadcast_to(np.eye(3), (2, 64, 3, 3)), atol=1e-5
    )
    assert len(pred.reasoning) == 2 and all(isinstance(r, str) for r in pred.reasoning)
    assert pred.num_generated_tokens == (3, 3)
    assert pred.truncated == (True, True)  # 3 tokens cannot reach <|traj_future_start|>
    t = pred.timings
    assert min(t.preprocess_ms, t.vision_ms, t.reasoning_ms, t.action_ms) > 0
    assert t.total_ms >= t.vision_ms + t.reasoning_ms + t.action_ms


@pytest.mark.slow  # 3-7 s on the shared 2-core machine
def test_seeded_and_reproducible(tiny_model) -> None:  # type: ignore[no-untyped-def]
    a = tiny_model.predict(_sample(t0_ns=5))
    b = tiny_model.predict(_sample(t0_ns=5))
    np.testing.assert_array_equal(a.xyz, b.xyz)
    assert a.reasoning == b.reasoning
    c = tiny_model.predict(_sample(t0_ns=6))  # another frame: other noise and sampling
    assert not np.array_equal(a.xyz, c.xyz)
    assert not np.array_equal(a.xyz[0], a.xyz[1])  # the two samples differ


@pytest.mark.slow  # 3-7 s on the shared 2-core machine
def test_same_seed_same_weights_across_loads(tiny_model) -> None:  # type: ignore[no-untyped-def]
    other = load_model(ModelSpec(backend="torch", model_path="tiny", max_reasoning_tokens=3, num_samples=2, seed=7))
    try:
        np.testing.assert_array_equal(other.predict(_sample()).xyz, tiny_model.predict(_sample()).xyz)
    finally:
        other.close()


def test_camera_frames_of_any_size(tiny_model) -> None:  # type: ignore[no-untyped-def]
    pred = tiny_model.predict(_sample(size=(360, 640)))  # resized by the processor rule to 320x576-like grids
    assert pred.xyz.shape == (2, 64, 3)


def test_input_errors(tiny_model) -> None:  # type: ignore[no-untyped-def]
    sample = _sample()
    images = dict(sample.images)
    del images[ALPAMAYO_R1_CAMERAS[3]]
    with pytest.raises(ValueError, match="missing camera 'camera_front_tele_30fov'"):
        tiny_model.predict(ModelInput(1, images, sample.frame_offsets_sec, sample.ego_history))
    bad_hist = EgoHistory(np.zeros((10, 3)), np.zeros((10, 3, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="ego history"):
        tiny_model.predict(ModelInput(1, sample.images, sample.frame_offsets_sec, bad_hist))


def test_unknown_model_path() -> None:
    with pytest.raises(FileNotFoundError, match="neither a checkpoint directory"):
        load_torch_model(ModelSpec(model_path="/nonexistent/checkpoint"))


def test_official_checkpoint_through_the_backend(official_tiny_a: Path) -> None:
    messages: list[str] = []
    spec = ModelSpec(model_path=str(official_tiny_a), greedy=True, max_reasoning_tokens=2, device="cpu")
    model = load_torch_model(spec, progress=messages.append)
    assert any("loaded model.safetensors (1/1)" in m for m in messages)
    assert messages[-1].startswith("model ready")
    assert not model.info.untrained and model.info.name == "alpamayo-r1" and len(model.info.version) == 12
    pred = model.predict(_sample())
    assert pred.xyz.shape == (1, 64, 3) and pred.truncated == (True,)
    model.close()
    with pytest.raises(RuntimeError, match="closed"):
        model.predict(_sample())


def test_default_is_the_shipped_driver_when_present() -> None:
    from alpamayo_ros.runtime.torch_backend import SHIPPED_DRIVER_DIR, resolve_model_path

    expected = str(SHIPPED_DRIVER_DIR) if (SHIPPED_DRIVER_DIR / "config.json").is_file() else "tiny"
    assert resolve_model_path("default") == expected
    assert resolve_model_path("tiny") == "tiny" and resolve_model_path("/x/y") == "/x/y"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"camera_names": ["camera_roof_360"]}, r"unknown \['camera_roof_360'\]"),
        ({"camera_names": []}, "camera_names"),
        ({"frame_offsets_sec": [0.0, -0.1]}, "must be ascending"),
        ({"frame_offsets_sec": [0.1]}, "at or before t0"),
    ],
)
def test_rig_from_config_rejects_bad_rigs(raw: dict[str, object], message: str) -> None:
    from alpamayo_ros.model.config import ConfigError
    from alpamayo_ros.runtime.torch_backend import rig_from_config

    with pytest.raises(ConfigError, match=message):
        rig_from_config(raw)


def test_rig_defaults_to_alpamayo_r1() -> None:
    from alpamayo_ros.runtime.torch_backend import rig_from_config

    assert rig_from_config({}) == (ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC)
