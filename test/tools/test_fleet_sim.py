"""`alpamayo-ros sim` on the fleet path in this process: the single-machine outputs plus rows, the gates over the
simulation's metric names, bad fleet flags, a unit that keeps failing, Ctrl-C keeping what finished."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sim_runs import TEST_POLICY_PARAMS, figures, sim, untimed_junit, world_tracks

from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools import sim as sim_tool
from alpamayo_ros.tools.fleet.command import collect
from alpamayo_ros.tools.fleet.executor import SerialExecutor
from alpamayo_ros.tools.fleet.gates import SIM_METRICS, GateError, check_gate, parse_gates
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.results import read_rows
from alpamayo_ros.tools.fleet.rollout_results import RolloutResults
from alpamayo_ros.tools.fleet.rollouts import RolloutSet, SimWorker, SimWorkerLoader


@pytest.fixture(scope="module")
def params_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim_params") / "test_policy.yaml"
    path.write_text(TEST_POLICY_PARAMS)
    return path


def _args(out: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sim_tool.add_arguments(parser)
    return parser.parse_args(["--out", str(out), "--seconds", "3", "--width", "96", "--height", "54", *argv])


@pytest.mark.slow
def test_the_fleet_path_writes_the_single_machine_outputs_plus_rows_and_gates(
    params_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = ["--suite", "smoke", "--driver", "node", "constant_velocity"]
    single, fleet = tmp_path / "single", tmp_path / "fleet"
    assert sim(params_file, single, *suite, "--transport", "inprocess") == 0
    better = json.loads((single / "metrics.json").read_text())
    for rollout in better["rollouts"]:
        rollout["metrics"]["progress_ratio"] *= 1.1  # the candidate is now 9 % behind this baseline
    (tmp_path / "better.json").write_text(json.dumps(better))
    gates = "collision_at_fault:>0,progress:+5%"
    baseline = ["--baseline", str(tmp_path / "better.json"), "--fail-on", gates, "--no-progress"]
    capsys.readouterr()
    assert sim(params_file, fleet, *suite, "--executor", "serial", *baseline) == 1  # in process by default
    printed = capsys.readouterr().out
    assert "gate failed: progress:+5%: progress" in printed and "collision_at_fault:>0" not in printed
    comparison = {r["metric"]: r for r in json.loads((fleet / "comparison.json").read_text())["rows"]}
    assert comparison["progress"]["worse"] and not comparison["collision_at_fault"]["worse"]
    assert comparison["collision_at_fault"]["current"] == 0
    assert figures(fleet) == figures(single)
    assert [(r["scenario"], r["driver"]) for r in figures(fleet)["rollouts"]] == [
        ("lead_vehicle_braking", "node"),
        ("lead_vehicle_braking", "constant_velocity"),
        ("pedestrian_crossing", "node"),
        ("pedestrian_crossing", "constant_velocity"),
    ]
    assert untimed_junit(fleet) == untimed_junit(single)
    assert world_tracks(fleet) == world_tracks(single) != {}
    rows = read_rows(fleet)
    assert [(r["scenario"], r["driver"], r["status"], r["attempts"]) for r in rows] == [
        ("lead_vehicle_braking", "node", "ok", 1),
        ("lead_vehicle_braking", "constant_velocity", "ok", 1),
        ("pedestrian_crossing", "node", "ok", 1),
        ("pedestrian_crossing", "constant_velocity", "ok", 1),
    ]
    assert rows[0]["metrics"] == json.loads((fleet / "metrics.json").read_text())["rollouts"][0]["metrics"]
    fl = json.loads((fleet / "metrics.json").read_text())["fleet"]
    assert (fl["executor"], fl["rollouts_total"], fl["rollouts_run"], fl["rollouts_failed"]) == ("serial", 4, 4, 0)
    assert not (fleet / "node").exists()  # no DDS node was started (it would have left its log there)
    report = (fleet / "report.html").read_text()
    assert "Rollouts (fleet run)" in report and "gate failed: progress:+5%" in report


def _summary(*node_rollouts: dict[str, Any]) -> dict[str, Any]:
    expert = {"driver": "expert", "passed": True, "error": "", "metrics": {"collision_at_fault": True}}
    rollouts = [
        {"driver": "node", "passed": not m.get("collision_at_fault"), "error": "", "metrics": m} for m in node_rollouts
    ]
    return {"drivers": {}, "rollouts": [expert, *rollouts], "fleet": {"rollouts_failed": 0}}


def test_sim_gates_read_the_node_rollouts() -> None:
    collision, progress, failed = parse_gates("collision_at_fault:>0,progress:+5%,failed_rollouts:>0", SIM_METRICS)
    clean = _summary({"collision_at_fault": False, "progress_ratio": 1.0}, {"progress_ratio": 0.9})
    crash = _summary({"collision_at_fault": True, "progress_ratio": 1.0}, {"progress_ratio": 0.8})
    assert check_gate(collision, clean, None) is None  # the expert's contact is not the node's
    assert check_gate(collision, crash, None) == "collision_at_fault:>0: collision_at_fault = 1"
    assert check_gate(progress, crash, clean) == "progress:+5%: progress 0.95 -> 0.9"
    assert check_gate(progress, clean, crash) is None
    assert check_gate(failed, clean, None) is None
    assert SIM_METRICS["pass_rate"].get(crash) == 0.5
    assert "not available" in (check_gate(collision, _summary(), None) or "")
    with pytest.raises(GateError, match=r"unknown metric 'ade_6\.4s'"):
        parse_gates("ade_6.4s:+5%", SIM_METRICS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail-on", "speed:>1"], "unknown metric 'speed'"),
        (["--fail-on", "progress:+5%"], "a change needs --baseline"),
        (["--address", "auto"], "need --executor ray"),
        (["--executor", "serial", "--workers", "2"], "need --executor ray"),
        (["--executor", "ray", "--attach"], "--attach drives one running node: not with --executor ray"),
        (["--executor", "serial", "--task-timeout", "0"], "--task-timeout 0.0: must be > 0 seconds"),
        (["--baseline", "/nonexistent/metrics.json"], "--baseline /nonexistent/metrics.json"),
    ],
)
def test_bad_fleet_flags_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert sim_tool.run(_args(tmp_path, "--suite", "smoke", *argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alpamayo-ros sim: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "rollouts").exists()  # refused before anything ran


def test_an_evaluation_is_no_simulation_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "evaluation.json"
    baseline.write_text(json.dumps({"model_metrics": {}}))
    assert sim_tool.run(_args(tmp_path, "--executor", "serial", "--baseline", str(baseline))) == 2
    assert "not a simulation metrics.json (no rollouts)" in capsys.readouterr().err


class _Broken(RolloutSet):
    """Raises on every attempt in one scenario; Ctrl-C in another; the rest run normally."""

    def __call__(self, worker: SimWorker) -> dict[str, Any]:
        if self.scenario == "curve_left":
            raise RuntimeError("the world broke")
        if self.scenario == "red_light_stop_line":
            raise KeyboardInterrupt
        return super().__call__(worker)


def test_failed_and_unrun_units_are_reported_never_dropped(tmp_path: Path) -> None:
    """Reference drivers only (no model): one unit fails twice, Ctrl-C arrives in the third; the first is kept."""
    args = _args(tmp_path, "--no-report")
    drivers = ("constant_velocity", "expert")  # run, and reported, expert first
    scenarios = ("lead_vehicle_braking", "curve_left", "red_light_stop_line")
    units = [_Broken(name, 1000, drivers, args) for name in scenarios]
    results = RolloutResults(tmp_path, list(units))
    loader = SimWorkerLoader(NodeParams(), args, needs_node=False)
    assert collect(SerialExecutor(retries=1), list(units), loader, results, Progress(3, enabled=False)) is True
    summary = results.finish({"interrupted": True})
    assert summary["fleet"] | {"failed": None} == {
        "interrupted": True,
        "rollouts_total": 6,
        "rollouts_run": 2,
        "rollouts_failed": 2,
        "rollouts_not_run": 2,
        "failed": None,
        "rows": "rows.jsonl",
    }
    assert summary["fleet"]["failed"] == [
        {"scenario": "curve_left", "seed": 1000, "attempts": 2, "errors": ["RuntimeError: the world broke"] * 2}
    ]
    assert [(r["scenario"], r["driver"], r["status"]) for r in read_rows(tmp_path)] == [
        ("lead_vehicle_braking", "expert", "ok"),
        ("lead_vehicle_braking", "constant_velocity", "ok"),
        ("curve_left", "expert", "failed"),
        ("curve_left", "constant_velocity", "failed"),
    ]
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    errors = {c.get("classname"): c.find("error") for c in cases}
    assert errors["sim.lead_vehicle_braking"] is None
    broken = errors["sim.curve_left"]
    assert broken is not None and broken.get("message") == "failed after 2 attempts: RuntimeError: the world broke"
    assert "sim.red_light_stop_line" not in errors
