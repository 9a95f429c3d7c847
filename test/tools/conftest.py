"""Shared fixtures of the tools tests: one small scenario bag per session (160x90 images, 3.5 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_W, TINY_H = 160, 90


@pytest.fixture(scope="session")
def tiny_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from alpamayo_ros.sim import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    out = tmp_path_factory.mktemp("bags") / "lead_braking"
    write_scenario_bag(generate("lead_vehicle_braking", 3, 3.5, TINY_W, TINY_H), out, progress=False)
    return out
