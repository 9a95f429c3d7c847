"""``--merge`` combines held-out tables: other scenarios side by side, other seeds of one scenario tick-weighted
(an earlier version let the last table's row replace the first's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluate_driver import main


def _row(ticks: int, ade: float, cv: float, decisions: float) -> dict[str, float]:
    """A table row in the evaluation's own keys (every horizon given the same figure)."""
    row: dict[str, float] = {"ticks": ticks, "agreement": 1.0, "agreement_compared": ticks, "reference_vs_gt": 1.0}
    for h in ("1s", "3s", "6.4s"):
        row |= {f"ade_{h}": ade, f"min_ade_{h}": ade, f"cv_ade_{h}": cv}
    row |= {f"decision_acc_{axis}": decisions for axis in ("both", "lon", "lat")}
    return row | {"ade_6.4s_vs_cv": ade / cv - 1.0}


def test_merge_weights_a_scenario_seen_in_two_tables_by_ticks(tmp_path: Path) -> None:
    first = {"red": _row(100, 1.0, 5.0, 0.9), "lead": _row(50, 1.0, 4.0, 1.0)}
    second = {"red": _row(300, 2.0, 2.0, 0.8)}
    paths = []
    for i, rows in enumerate((first, second)):
        paths.append(tmp_path / f"t{i}.json")
        paths[-1].write_text(json.dumps({"rows": {**rows, "all": _row(1, 9.0, 9.0, 0.0)}}))
    assert main(["--merge", *map(str, paths), "--out", str(tmp_path / "m")]) == 0
    rows = json.loads((tmp_path / "m" / "table.json").read_text())["rows"]
    assert rows["red"]["ticks"] == 400
    assert rows["red"]["ade_6.4s"] == pytest.approx((100 * 1.0 + 300 * 2.0) / 400)
    assert rows["red"]["ade_6.4s_vs_cv"] == pytest.approx(1.75 / ((100 * 5.0 + 300 * 2.0) / 400) - 1.0)
    assert rows["red"]["decision_acc_both"] == pytest.approx(0.825)
    assert rows["lead"] == first["lead"]
    assert rows["all"]["ticks"] == 450  # the inputs' own "all" rows are recomputed, not summed in
    assert rows["all"]["decision_acc_both"] == pytest.approx((400 * 0.825 + 50 * 1.0) / 450)


def test_merge_sums_the_decision_confusion_counts_of_proxy_tables(tmp_path: Path) -> None:
    """Proxy rows carry counts (``lon_confusion``) beside their means: those add up instead of being averaged."""
    first = {"red": _row(100, 1.0, 5.0, 0.9) | {"lon_confusion": {"STOP->STOP": 90, "STOP->DECELERATE": 10}}}
    second = {"red": _row(300, 2.0, 2.0, 0.8) | {"lon_confusion": {"STOP->STOP": 240, "KEEP_SPEED->STOP": 60}}}
    paths = []
    for i, rows in enumerate((first, second)):
        paths.append(tmp_path / f"t{i}.json")
        paths[-1].write_text(json.dumps({"rows": rows}))
    assert main(["--merge", *map(str, paths), "--out", str(tmp_path / "m")]) == 0
    rows = json.loads((tmp_path / "m" / "table.json").read_text())["rows"]
    assert rows["red"]["lon_confusion"] == {"STOP->STOP": 330, "KEEP_SPEED->STOP": 60, "STOP->DECELERATE": 10}
    assert rows["red"]["decision_acc_both"] == pytest.approx(0.825)
    assert rows["all"]["lon_confusion"] == rows["red"]["lon_confusion"]
