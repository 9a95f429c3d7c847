"""The prepared device script runs end to end on CPU (--cpu-smoke) and reports parity and stage timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check_model.py"


@pytest.mark.slow
def test_cpu_smoke(official_tiny_a: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke", "--fixtures", str(official_tiny_a), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RESULT: PASS" in proc.stdout
    report = json.loads(out.read_text())
    assert {r["quantity"] for r in report["parity"]} >= {"prefill_logits", "pred_xyz_m", "greedy_tokens_mismatch"}
    assert all(r["ok"] for r in report["parity"] if r["dtype"] == "float32")
    base = report["baseline"]
    assert base["reasoning_tokens"] == 40 and base["prompt_tokens"] == 3006
    assert min(base["vision_ms"], base["prefill_ms"], base["decode_ms"], base["action_ms"]) > 0
