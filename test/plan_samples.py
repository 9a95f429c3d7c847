"""Shared test factories for the planning tick: predictions, raw frames, an ego history, a recording fake model."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from alpamayo_ros.core.ego_history import EgoHistoryResult, OdomPose
from alpamayo_ros.core.planning import PlanJob, synthetic_input
from alpamayo_ros.core.rig import FUTURE_STEPS
from alpamayo_ros.core.sync import FrameEntry, SyncedSample
from alpamayo_ros.core.types import ModelInfo, ModelInput, Prediction

T0 = 50 * 1_000_000_000 + 123
INFO = ModelInfo("test-policy", "v1", ("camera_front_wide_120fov",), (-0.1, 0.0), None)
CAM = INFO.cameras[0]


def prediction(xyz: np.ndarray, reasoning: tuple[str, ...] | None = None) -> Prediction:
    rot = np.broadcast_to(np.eye(3), (*xyz.shape[:2], 3, 3)).copy()
    n = xyz.shape[0]
    return Prediction(xyz, rot, ("Keep lane.",) * n if reasoning is None else reasoning, (1,) * n, (False,) * n)


def straight(num_samples: int = 1, speed_mps: float = 5.0) -> Prediction:
    x = speed_mps * 0.1 * (np.arange(FUTURE_STEPS) + 1)
    xyz = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)
    return prediction(np.broadcast_to(xyz, (num_samples, FUTURE_STEPS, 3)).copy())


def fan(lateral_m: list[float], speed_mps: float = 10.0) -> np.ndarray:
    """Samples along x at one speed, each bending to its final lateral offset (m, left +) by a parabola."""
    x = speed_mps * 0.1 * (np.arange(FUTURE_STEPS) + 1)
    shape = (x / x[-1]) ** 2
    return np.stack([np.stack([x, y * shape, np.zeros_like(x)], axis=1) for y in lateral_m])


def rgb_image(height: int = 8, width: int = 12) -> Image:
    img = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    img.data = bytes(np.full((height, width, 3), 7, np.uint8).tobytes())
    return img


def ego_result(speed_mps: float = 5.0) -> EgoHistoryResult:
    """A stationary-history ego at (10, 0, 0) in odom, claiming ``speed_mps`` (what the monitor compares with)."""
    return EgoHistoryResult(
        history=synthetic_input(None, (), ()).ego_history,
        t0_pose=OdomPose("odom", np.array([10.0, 0.0, 0.0]), np.eye(3), np.array([0.0, 0.0, 0.0, 1.0])),
        speed_mps=speed_mps,
    )


def camera_sample(*entries: FrameEntry | None) -> SyncedSample:
    return SyncedSample(T0, {CAM: entries}, {}, ())


def frames() -> SyncedSample:
    return camera_sample(FrameEntry(T0 - 100_000_000, rgb_image()), FrameEntry(T0, rgb_image()))


def job(sample: SyncedSample | None = None, extra: FrameEntry | None = None) -> PlanJob:
    return PlanJob(sample=sample or frames(), ego=ego_result(), generation=7, select_ms=0.0, extra_frame=extra)


class FakeModel:
    """A DrivingModel that records its input and returns (or raises) what it is given."""

    def __init__(self, result: Prediction | Exception, info: ModelInfo = INFO) -> None:
        self._result, self._info = result, info
        self.inputs: list[ModelInput] = []

    @property
    def info(self) -> ModelInfo:
        return self._info

    def predict(self, sample: ModelInput) -> Prediction:
        self.inputs.append(sample)
        if isinstance(self._result, Exception):
            raise self._result
        return self._result

    def close(self) -> None:
        pass
