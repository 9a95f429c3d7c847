"""The fleet path of `alpamayo-ros evaluate` on real bags in this process: merged outputs equal to the
single-machine evaluation, per-bag rows, baseline gates and their exit codes, Ctrl-C keeping what finished."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from alpamayo_ros.cli import main
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools.evaluate import run_evaluation
from alpamayo_ros.tools.fleet.command import collect
from alpamayo_ros.tools.fleet.executor import SerialExecutor
from alpamayo_ros.tools.fleet.inputs import BagEntry
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.results import FleetResults, read_rows
from alpamayo_ros.tools.fleet.units import EvaluateBag, ModelLoader

TIMED = ("latency_ms", "model", "fleet")  # wall-clock figures and run descriptions differ between any two runs


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without its timings: what two runs of the same bags must agree on exactly."""
    out = {k: v for k, v in summary.items() if k not in TIMED}
    out["per_tick"] = [{k: v for k, v in t.items() if k != "latency_ms"} for t in summary["per_tick"]]
    return out


@pytest.fixture(scope="module")
def fleet_dir(tiny_bag: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bags in one directory: the shared tiny bag and a second scenario."""
    from alpamayo_ros.sim import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    root = tmp_path_factory.mktemp("fleet") / "drives"
    shutil.copytree(tiny_bag, root / "a_lead_braking")
    write_scenario_bag(generate("curve_left", 4, 3.5, 160, 90), root / "b_curve_left", progress=False)
    return root


def _evaluate(*argv: str) -> int:
    return main(["evaluate", *argv, "--backend", "test_policy", "--no-progress"])


def test_a_directory_of_bags_gives_the_single_machine_figures_plus_rows(fleet_dir: Path, tmp_path: Path) -> None:
    assert _evaluate(str(fleet_dir), "--out", str(tmp_path / "fleet")) == 0
    merged = json.loads((tmp_path / "fleet" / "metrics.json").read_text())
    bags = sorted(fleet_dir.iterdir())
    single = run_evaluation(bags, tmp_path / "single", ModelSpec(backend="test_policy"), progress=False)
    assert figures(merged) == figures(single)
    assert merged["ticks"]["scored"] == 40
    assert merged["fleet"] | {"wall_sec": 0} == merged["fleet"] | {
        "executor": "serial",
        "bags_total": 2,
        "bags_ok": 2,
        "bags_failed": 0,
        "bags_not_run": 0,
        "interrupted": False,
        "wall_sec": 0,
    }
    rows = read_rows(tmp_path / "fleet")
    assert [r["bag"] for r in sorted(rows, key=lambda r: r["bag"])] == [str(b) for b in bags]
    for row in rows:
        alone = run_evaluation([Path(row["bag"])], tmp_path / "alone", ModelSpec(backend="test_policy"), progress=False)
        assert row["status"] == "ok" and row["attempts"] == 1
        assert row["model_metrics"] == alone["model_metrics"] and row["ticks"] == alone["ticks"]
    html = (tmp_path / "fleet" / "report.html").read_text()
    assert "Bags (fleet run)" in html and "b_curve_left" in html and "Trajectory error" in html


def test_baseline_gates_pass_on_the_same_run_and_fail_on_a_better_baseline(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "nightly.txt"
    manifest.write_text("".join(f"{b} vehicle=v{i}\n" for i, b in enumerate(sorted(fleet_dir.iterdir()))))
    assert _evaluate(str(manifest), "--out", str(tmp_path / "base")) == 0
    base_file = tmp_path / "base" / "metrics.json"
    gates = "ade_6.4s:+5%,model_failures:>0"
    same_run = ["--out", str(tmp_path / "same"), "--baseline", str(base_file), "--fail-on", gates]
    assert _evaluate(str(manifest), *same_run) == 0
    same = json.loads((tmp_path / "same" / "comparison.json").read_text())
    assert same["gate_failures"] == [] and not any(r["worse"] for r in same["rows"])
    assert {r["tags"]["vehicle"] for r in read_rows(tmp_path / "same")} == {"v0", "v1"}

    better = json.loads(base_file.read_text())
    better["model_metrics"]["ade"]["6.4s"] *= 0.9  # the candidate is now 11 % worse than this baseline
    (tmp_path / "better.json").write_text(json.dumps(better))
    capsys.readouterr()
    code = _evaluate(str(manifest), "--out", str(tmp_path / "worse"), "--baseline", str(tmp_path / "better.json"))
    assert code == 0  # marked, but no gate asked for
    assert "ade_6.4s" in capsys.readouterr().out.split("WORSE")[0].splitlines()[-1]
    code = _evaluate(
        str(manifest), "--out", str(tmp_path / "worse"), "--baseline", str(tmp_path / "better.json"), "--fail-on", gates
    )
    assert code == 1
    assert "gate failed: ade_6.4s:+5%: ade_6.4s" in capsys.readouterr().out
    assert "gate failed" in (tmp_path / "worse" / "report.html").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail-on", "ade_6.4s:+5%"], "a change needs --baseline"),
        (["--fail-on", "speed:>1"], "unknown metric 'speed'"),
        (["--workers", "2"], "need --executor ray"),
        (["--baseline", "/nonexistent/metrics.json"], "--baseline /nonexistent/metrics.json"),
    ],
)
def test_bad_fleet_flags_are_one_line_errors(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert _evaluate(str(fleet_dir), "--out", str(tmp_path), *argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alpamayo-ros evaluate: ") and message in err and "\n" not in err


class _InterruptOnSecond(EvaluateBag):
    """Ctrl-C arriving while the second bag runs."""

    def __call__(self, model: Any) -> dict[str, Any]:
        if self.entry.path.name.startswith("b_"):
            raise KeyboardInterrupt
        return super().__call__(model)


def test_ctrl_c_keeps_what_finished(fleet_dir: Path, tmp_path: Path) -> None:
    entries = [BagEntry(b) for b in sorted(fleet_dir.iterdir())]
    results = FleetResults(tmp_path, entries)
    units = [_InterruptOnSecond(e, NodeParams()) for e in entries]
    loader = ModelLoader(ModelSpec(backend="test_policy"))
    assert collect(SerialExecutor(), list(units), loader, results, Progress(2, enabled=False)) is True
    summary = results.finish({"interrupted": True})
    assert [r["bag"] for r in read_rows(tmp_path)] == [str(entries[0].path)]
    assert summary["fleet"]["bags_ok"] == 1 and summary["fleet"]["bags_not_run"] == 1
    assert summary["ticks"]["scored"] == 20
    assert json.loads((tmp_path / "metrics.json").read_text())["fleet"]["interrupted"] is True


def test_the_fleet_extra_pins_the_packages_of_requirements_fleet() -> None:
    from support import REPO

    pins = [ln for ln in (REPO / "requirements/fleet.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert pins == ["ray[client]==2.60.0", "ros-domain-coordinator==0.12.0"]
    assert f"extras_require={{'fleet': {pins}}}".replace("'", '"') in (REPO / "setup.py").read_text()
