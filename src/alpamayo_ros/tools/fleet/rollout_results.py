"""The driver side of a fleet simulation: per-rollout rows as they arrive, then the single-machine sim outputs.

Each finished unit's rollouts are decoded and their rows appended to ``rows.jsonl`` at once. At the end the rollouts
are merged in suite order, whatever order they finished in, and written by ``tools.sim_report.write_outputs``, the
writer of a single-machine run: the same ``metrics.json``, ``junit.xml`` and ``report.html``, with a ``fleet``
section added to metrics.json. A unit that failed after its retries becomes an error rollout for each of its
drivers (a JUnit ``<error>`` naming the reason): never silently missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alpamayo_ros.tools.fleet.executor import Outcome, Status
from alpamayo_ros.tools.fleet.report_sections import rollouts_section
from alpamayo_ros.tools.fleet.results import RowLog, print_counts, read_rows, worker_row
from alpamayo_ros.tools.fleet.rollouts import RolloutSet, decode_rollout
from alpamayo_ros.tools.scene_options import scene_choice
from alpamayo_ros.tools.sim import RolloutResult, rollout_order


def rollout_row(result: RolloutResult, outcome: Outcome) -> dict[str, Any]:
    """One rollout's line of rows.jsonl: which rollout, how its unit ended and where it ran, its metrics."""
    return {
        "scenario": result.scenario,
        "seed": result.seed,
        "driver": result.driver,
        "passed": result.passed,
        "error": result.error,
        "wall_s": round(result.wall_s, 2),
        "sim_s": round(result.sim_s, 2),
        **worker_row(outcome),
        "metrics": result.metrics,
        "files": result.files,
    }


class RolloutResults:
    """Collects the rollout sets' outcomes (streaming rows to disk) and writes the merged simulation outputs.

    ``out`` is the --out the user gave; the workers wrote under its absolute form, and file paths are given back
    relative to ``out`` as a single-machine run writes them.
    """

    def __init__(self, out: Path, units: list[RolloutSet]) -> None:
        self.out = out
        self._absolute_out = out.resolve()
        self.units = {u.key: u for u in units}
        self.rollouts: dict[str, list[RolloutResult]] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.results: list[RolloutResult] = []
        self._rows = RowLog(out)

    def add(self, outcome: Outcome) -> None:
        unit = self.units[outcome.key]
        if outcome.status is Status.OK and outcome.result is not None:
            rollouts = [self._as_given(decode_rollout(d)) for d in outcome.result["rollouts"]]
        else:
            error = f"failed after {outcome.attempts} attempts: {outcome.reason}"
            drivers = [d for d in rollout_order(unit.drivers) if d in unit.drivers]  # as the unit would have run them
            rollouts = [RolloutResult(unit.scenario, unit.seed, d, None, error=error) for d in drivers]
        self.rollouts[outcome.key] = rollouts
        self.outcomes[outcome.key] = outcome
        for r in rollouts:
            self._rows.write(rollout_row(r, outcome))

    def _as_given(self, result: RolloutResult) -> RolloutResult:
        for name, path in result.files.items():
            if Path(path).is_relative_to(self._absolute_out):
                result.files[name] = str(self.out / Path(path).relative_to(self._absolute_out))
        return result

    def finish(self, fleet: dict[str, Any]) -> dict[str, Any]:
        """Write metrics.json, junit.xml and report.html from the rollouts that finished; return the summary."""
        from alpamayo_ros.tools.sim_report import write_outputs

        self._rows.close()
        self.results = [r for key in self.units for r in self.rollouts.get(key, [])]
        scenes = scene_choice(next(iter(self.units.values())).args) if self.units else None
        write_outputs(self.out, self.results, scenes)
        failed = [(self.units[k], o) for k, o in self.outcomes.items() if o.status is Status.FAILED]
        total = sum(len(u.drivers) for u in self.units.values())
        summary: dict[str, Any] = json.loads((self.out / "metrics.json").read_text())
        summary["fleet"] = {
            **fleet,
            "rollouts_total": total,
            "rollouts_run": sum(len(u.drivers) for u, o in self._ended() if o.status is Status.OK),
            "rollouts_failed": sum(len(u.drivers) for u, _ in failed),
            "rollouts_not_run": total - sum(len(u.drivers) for u, _ in self._ended()),
            "failed": [
                {"scenario": u.scenario, "seed": u.seed, "attempts": o.attempts, "errors": o.errors} for u, o in failed
            ],
            "rows": "rows.jsonl",
        }
        (self.out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _ended(self) -> list[tuple[RolloutSet, Outcome]]:
        return [(self.units[k], o) for k, o in self.outcomes.items()]

    def rows_section(self) -> str:
        return rollouts_section(read_rows(self.out))

    def print_summary(self, summary: dict[str, Any]) -> None:
        from alpamayo_ros.tools.sim_report import format_table

        print(format_table(self.results))
        failed = [(f"{f['scenario']} seed {f['seed']}", f) for f in summary["fleet"]["failed"]]
        print_counts(summary["fleet"], "rollout", "run", failed)

    def files(self) -> dict[str, Path]:
        return {
            "metrics": self.out / "metrics.json",
            "junit": self.out / "junit.xml",
            "report": self.out / "report.html",
        }

    def failed(self, summary: dict[str, Any]) -> bool:
        """A unit failed, or a rollout ended in an error (a single-machine run exits 1 then too)."""
        return bool(summary["fleet"]["rollouts_failed"]) or any(r.error for r in self.results)

    def not_run(self, summary: dict[str, Any]) -> str:
        return f"{summary['fleet']['rollouts_not_run']} rollouts"
