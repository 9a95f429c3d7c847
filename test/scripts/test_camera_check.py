"""The camera check tells a driver that reads the scene from the cameras from one that reads it off the ego's past
motion: two stand-in drivers, one of each kind, run through ``scripts/evaluate_driver.py``'s camera check."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from evaluate_driver import camera_check

from alpamayo_ros.core.decisions import Longitudinal
from alpamayo_ros.core.rig import CAMERA_NAMES, HISTORY_STEPS
from alpamayo_ros.core.types import ModelInput
from alpamayo_ros.training.data import SampleSet

CLEAR = "The lane ahead is clear. I should keep my speed. Keep the lane and keep a steady speed."
RED = "The traffic light ahead is red and the stop line is 20 m away. I must stop at the stop line. Keep the lane and come to a stop."  # noqa: E501


def _samples() -> SampleSet:
    """Three free-road ticks, then three red-light ticks (one of which is still 'keep speed' like free road).
    Every sample's frames are filled with its own index and its history runs at its own speed."""
    n = 6
    images = np.zeros((n, len(CAMERA_NAMES), 1, 8, 8, 3), dtype=np.uint8)
    for i in range(n):
        images[i] = i
    speeds = np.arange(1.0, n + 1.0)
    hist = np.zeros((n, HISTORY_STEPS, 3), dtype=np.float32)
    hist[..., 0] = speeds[:, None] * (np.arange(HISTORY_STEPS) - (HISTORY_STEPS - 1)) * 0.1
    keep, stop = int(Longitudinal.KEEP_SPEED), int(Longitudinal.STOP)
    lon = np.array([keep, keep, keep, keep, stop, stop])
    texts = [CLEAR, CLEAR, CLEAR, CLEAR, RED, RED]
    return SampleSet(
        images, hist, np.zeros((n, HISTORY_STEPS), np.float32), np.zeros((n, 64, 3), np.float32),
        np.zeros((n, 64, 2), np.float32), speeds.astype(np.float32), lon, np.zeros(n, int), texts,
        ["free_road"] * 3 + ["red_light_stop_line"] * 3,
    )  # fmt: skip


@dataclass
class _Driver:
    """Says the reference reasoning of the sample whose frames (or whose history) it was given."""

    data: SampleSet
    reads: str
    info: Any = field(default_factory=lambda: SimpleNamespace(cameras=CAMERA_NAMES, frame_offsets_sec=(0.0,)))

    def predict(self, inp: ModelInput) -> Any:
        if self.reads == "cameras":
            i = int(np.asarray(inp.images[CAMERA_NAMES[0]]).flat[0])
        else:
            speed = -float(inp.ego_history.xyz[-2, 0]) / 0.1
            i = int(np.argmin(np.abs(self.data.speed - speed)))
        return SimpleNamespace(reasoning=[self.data.texts[i]])


@pytest.mark.parametrize(("reads", "cameras", "history"), [("cameras", 1.0, 0.0), ("history", 0.0, 1.0)])
def test_camera_check_tells_which_input_the_reasoning_follows(reads: str, cameras: float, history: float) -> None:
    data = _samples()
    rows = camera_check(_Driver(data, reads), data, progress=False)
    # pairs: (3, 0) share 'keep speed' and are skipped; (4, 1) and (5, 2) differ, each run both ways
    assert rows["red_light_stop_line"]["runs"] == 4 and rows["all"]["runs"] == 4
    assert rows["all"]["follows_cameras"] == cameras and rows["all"]["follows_history"] == history


def test_camera_check_needs_the_base_scenario() -> None:
    data = _samples()
    with pytest.raises(ValueError, match="needs the 'lead_vehicle_braking' scenario"):
        camera_check(_Driver(data, "cameras"), data, base="lead_vehicle_braking", progress=False)
