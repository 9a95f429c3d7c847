"""scripts/fuzz_node.py and its judging rules: the harness that produced docs/hardening.md's figures must not rot.

The smoke test runs the real harness end to end (node process, DDS on this session's domain, one hostile case);
the rule tests feed ``hostile_inputs`` plans whose verdict is known.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from hostile_inputs import Rig, jpeg_declaring, jpeg_truncated, png_bomb, tainted_plans
from node_harness import SEC, Injection

from alpamayo_ros.core.images import CorruptImageError, compressed_size

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
R1_RIG = Rig(
    "camera_cross_right_120fov",
    "camera_front_tele_30fov",
    "camera_front_wide_120fov",
    (64, 96),
    ("camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov", "camera_front_tele_30fov"),
    (-0.3, -0.2, -0.1, 0.0),
)


def _plan(t0_ns: int, x: float = 1.0) -> Any:
    stamp = SimpleNamespace(sec=t0_ns // SEC, nanosec=t0_ns % SEC)
    pose = SimpleNamespace(pose=SimpleNamespace(position=SimpleNamespace(x=x, y=0.0)))
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), poses=[pose])


def test_a_plan_whose_t0_reads_a_bad_frame_is_caught() -> None:
    """A bad frame at 100.0 s reaches the R1 model's plans at t0 100.0 .. 100.3 s; later ones are clean."""
    bad = Injection("camera_cross_right_120fov", [100 * SEC], [100 * SEC], [0.0])
    plans = [_plan(100 * SEC + k * 100_000_000) for k in range(6)]
    verdict = tainted_plans(plans, {}, {}, [bad], R1_RIG)
    assert [t0 for t0, _ in verdict] == [100 * SEC + k * 100_000_000 for k in range(4)]
    assert "camera_cross_right_120fov frame stamped 100.00 s" in verdict[0][1]


def test_a_plan_that_arrived_before_the_bad_frame_was_sent_is_not_its() -> None:
    """A frame stamped 5 s in the past shares its t0 with the good plan published 5 s earlier."""
    stale = Injection("camera_cross_right_120fov", [105 * SEC], [100 * SEC], [50.0])
    plans = [_plan(100 * SEC)]
    assert tainted_plans(plans, {100 * SEC: 45.0}, {}, [stale], R1_RIG) == []
    assert len(tainted_plans(plans, {100 * SEC: 50.2}, {}, [stale], R1_RIG)) == 1


def test_a_camera_the_model_does_not_read_taints_nothing() -> None:
    bad = Injection("camera_rear_tele_30fov", [100 * SEC], [100 * SEC], [0.0])
    assert tainted_plans([_plan(100 * SEC)], {}, {}, [bad], R1_RIG) == []


def test_odometry_rules() -> None:
    hole = Injection("odometry", [100 * SEC + k * 20_000_000 for k in range(25)], [0] * 25, [0.0] * 25)
    inside, after = _plan(100 * SEC + 300_000_000), _plan(101 * SEC)
    assert [t0 for t0, _ in tainted_plans([inside, after], {}, {}, [hole], R1_RIG)] == [100 * SEC + 300_000_000]
    duplicate = Injection("odometry", [100 * SEC], [100 * SEC], [0.0])
    assert tainted_plans([_plan(100 * SEC)], {}, {100 * SEC: 0.02}, [duplicate], R1_RIG) == []
    assert tainted_plans([_plan(100 * SEC)], {}, {100 * SEC: 3.02}, [duplicate], R1_RIG) == [
        (100 * SEC, "the duplicate odometry pose")
    ]
    assert tainted_plans([_plan(7 * SEC, x=math.nan)], {}, {}, [], R1_RIG) == [(7 * SEC, "non-finite pose")]


def test_the_payloads_are_what_they_claim() -> None:
    """The bomb really inflates (a small one decodes to black), the lying JPEG header and the cut JPEG as named."""
    small = png_bomb(64)
    decoded = cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (64, 64) and not decoded.any()
    assert len(png_bomb()) < 500_000  # 20000 x 20000 declared
    assert compressed_size("jpeg", jpeg_declaring((64, 96), 8000, 8000)) == (8000, 8000)
    cut = jpeg_truncated((64, 96))
    with pytest.raises(CorruptImageError, match="is truncated"):  # refused on arrival, before any decode
        compressed_size("jpeg", cut)


@pytest.mark.ros
@pytest.mark.slow  # a node process and DDS discovery: ~10 s on two cores
def test_fuzz_harness_runs_one_case_end_to_end(tmp_path: Path, ros_env: dict[str, str]) -> None:
    out = tmp_path / "fuzz.json"
    done = subprocess.run(
        [
            sys.executable, str(SCRIPTS / "fuzz_node.py"), "--backend", "test_policy", "--size", "64x96",
            "--cases", "tiny_1x1", "--json", str(out), "--domain-id", os.environ["ROS_DOMAIN_ID"],
            "--log-dir", str(tmp_path / "logs"),
        ],
        env=ros_env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    (case,) = report["cases"]
    assert case["case"] == "tiny_1x1" and case["alive"] and case["ok"]
    assert case["bad_plans"] == 0 and case["plans_in_case"] > 0
    assert case["diagnostic_named"] and "below input.min_image_side_px" in case["last_error"]
    assert case["rejected_in_case"] == 1
    assert float(case["delivery_pct"]) > 50.0  # the share of the camera's frames that arrived, from its stamps
    assert 0.0 < case["recovery_s"] < 10.0 and case["peak_rss_mib"] > 50
    assert report["node_exit_code"] == 0
    assert "tiny_1x1" in done.stdout and "recovery s" in done.stdout
