"""TestPolicy: a deterministic stand-in DrivingModel for tests and plumbing checks. NOT a driving model.

It keeps the current speed (estimated from the ego history) straight ahead and writes one matching sentence,
so the node's consistency monitor sees agreement. It never looks at the images beyond checking their shapes.
Never the product default: select it explicitly with backend "test_policy".
"""

from __future__ import annotations

import time

import numpy as np

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC, FUTURE_STEPS, STEP_SEC
from alpamayo_ros.core.types import ModelInfo, ModelInput, Prediction, StageTimings


class TestPolicyError(RuntimeError):
    """Raised on a malformed sample."""

    __test__ = False  # not a pytest test class


class TestPolicy:
    """Constant-speed, lane-keeping plan with a matching Chain-of-Causation sentence (test double)."""

    __test__ = False  # not a pytest test class

    def __init__(self, spec: ModelSpec, image_size_hw: tuple[int, int] | None = None) -> None:
        self.spec = spec
        self._info = ModelInfo(
            name="test-policy",
            version="constant-speed-1",
            cameras=ALPAMAYO_R1_CAMERAS,
            frame_offsets_sec=ALPAMAYO_R1_FRAME_OFFSETS_SEC,
            image_size_hw=image_size_hw,
            untrained=True,
        )
        self.calls = 0

    @property
    def info(self) -> ModelInfo:
        return self._info

    def predict(self, sample: ModelInput) -> Prediction:
        start = time.perf_counter()
        self.calls += 1
        for cam in self._info.cameras:
            frames = sample.images.get(cam)
            if frames is None or frames.ndim != 4 or frames.shape[0] != len(self._info.frame_offsets_sec):
                shape = None if frames is None else frames.shape
                raise TestPolicyError(f"camera {cam}: expected (T, H, W, 3) frames, got {shape}")
        hist = sample.ego_history.xyz
        speed_mps = float(np.linalg.norm(hist[-1] - hist[-2]) / STEP_SEC)
        if speed_mps < 0.3:
            speed_mps = 0.0
        n = self.spec.num_samples
        t = (np.arange(FUTURE_STEPS) + 1) * STEP_SEC
        xyz = np.zeros((n, FUTURE_STEPS, 3))
        xyz[:, :, 0] = speed_mps * t
        xyz[:, :, 2] = hist[-1, 2]
        rotation = np.broadcast_to(np.eye(3), (n, FUTURE_STEPS, 3, 3)).copy()
        if speed_mps == 0.0:
            text = "The ego vehicle is stationary, so remain stopped."
        else:
            text = f"The road ahead is clear, so keep the current speed of {speed_mps:.1f} m/s and stay in the lane."
        total_ms = (time.perf_counter() - start) * 1e3
        return Prediction(
            xyz=xyz,
            rotation=rotation,
            reasoning=(text,) * n,
            num_generated_tokens=(len(text.split()),) * n,
            truncated=(False,) * n,
            timings=StageTimings(total_ms=total_ms),
        )

    def close(self) -> None:
        self.calls = 0
