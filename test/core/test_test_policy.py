"""TestPolicy (runtime/test_policy.py): deterministic, consistent with its own sentence, raises on request."""

from __future__ import annotations

import numpy as np
import pytest

from alpamayo_ros.core.decisions import Agreement, check_consistency
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.types import DrivingModel, EgoHistory, ModelInput
from alpamayo_ros.runtime.registry import load_model
from alpamayo_ros.runtime.test_policy import TestPolicy, TestPolicyError


def sample(speed_mps: float, cameras: tuple[str, ...]) -> ModelInput:
    offsets = np.linspace(-1.5, 0.0, 16)
    xyz = np.stack([speed_mps * offsets, np.zeros(16), np.zeros(16)], axis=1)
    history = EgoHistory(xyz=xyz, rotation=np.broadcast_to(np.eye(3), (16, 3, 3)).copy(), offsets_sec=offsets)
    images = {c: np.zeros((4, 8, 12, 3), np.uint8) for c in cameras}
    return ModelInput(t0_ns=1, images=images, frame_offsets_sec=(-0.3, -0.2, -0.1, 0.0), ego_history=history)


@pytest.mark.parametrize("speed", [0.0, 3.0, 13.9])
def test_keeps_speed_and_agrees_with_itself(speed: float) -> None:
    model = load_model(ModelSpec(backend="test_policy", num_samples=2))
    assert isinstance(model, DrivingModel) and isinstance(model, TestPolicy)
    assert model.info.untrained
    pred = model.predict(sample(speed, model.info.cameras))
    assert pred.xyz.shape == (2, 64, 3) and pred.rotation.shape == (2, 64, 3, 3)
    assert pred.xyz[0, 9, 0] == pytest.approx(speed * 1.0)
    report = check_consistency(pred.reasoning[0], pred.xyz[0], speed)
    assert report.agreement is Agreement.AGREE, report.detail


def test_raises_on_a_missing_camera() -> None:
    model = TestPolicy(ModelSpec(backend="test_policy"))
    with pytest.raises(TestPolicyError, match="camera_front_tele_30fov"):
        model.predict(sample(1.0, model.info.cameras[:3]))
