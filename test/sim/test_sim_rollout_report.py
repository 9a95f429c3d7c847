"""Rollout report files from a real closed-loop rollout, and the reference-driver script's table and errors."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alpamayo_ros.sim.closed_loop import ClosedLoopWorld, ConstantVelocityDriver, run_rollout
from alpamayo_ros.sim.metrics import evaluate_rollout
from alpamayo_ros.sim.rollout_report import COLORS, TEXT_H, VIEW_H, birdseye_frame, camera_mosaic, write_rollout_report

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sim_reference_drivers.py"


def test_report_of_a_failing_rollout(tmp_path: Path) -> None:
    world = ClosedLoopWorld("red_light_stop_line", 1000, 12.0, render=False)
    rollout = run_rollout(world, ConstantVelocityDriver(world))
    metrics = evaluate_rollout(rollout)
    frames = [np.full((27, 48, 3), 40 * k, np.uint8) for k in range(7)]  # what a rendering caller passes
    out = write_rollout_report(rollout, metrics, tmp_path / "r", failure_frames=frames)
    gif = Image.open(out / "birdseye.gif")
    assert gif.n_frames == len(rollout.records)
    assert Image.open(out / "timeseries.png").size[0] > 300
    assert Image.open(out / "failure_cameras.png").size == (4 * 48, 2 * 27)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["red_light_violation"] is True
    assert saved["failures"][0]["condition"] == "red_light_violation"
    # The failure is written in red under the view from its tick on, not before.
    fired = metrics.failures[0].tick
    red = np.array(COLORS["fail"])

    def has_red_text(k: int) -> bool:
        text = birdseye_frame(rollout, k, "red_light_violation" if k >= fired else "")[VIEW_H : VIEW_H + TEXT_H]
        return bool(np.any(np.all(text == red, axis=-1)))

    assert has_red_text(fired) and not has_red_text(fired - 1)


def test_camera_mosaic_tiles_in_rig_order() -> None:
    frames = [np.full((2, 3, 3), k, np.uint8) for k in range(7)]
    mosaic = camera_mosaic(frames)
    assert mosaic.shape == (4, 12, 3)
    assert mosaic[0, 3, 0] == 1 and mosaic[2, 0, 0] == 4 and mosaic[3, 11, 0] == 0  # blank last tile


def _run_script(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    return int(exc.value.code or 0)


def test_script_table_and_bad_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    code = _run_script(
        ["--scenarios", "lead_vehicle_braking", "--seeds", "7", "--seconds", "6", "--json", str(out)], monkeypatch
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "lead_vehicle_braking          7 expert" in printed and "constant_velocity" in printed
    rows = json.loads(out.read_text())
    assert [r["driver"] for r in rows] == ["expert", "constant_velocity"]
    assert _run_script(["--scenarios", "nope"], monkeypatch) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err
