"""The driver side of a fleet evaluation: per-bag rows as they arrive, then the merged single-machine outputs.

Each finished bag is decoded and its row appended to ``rows.jsonl`` at once (a run that is stopped keeps what
finished). At the end the bags are merged in input order, whatever order they finished in, through the same
``summarize`` and ``write_report`` as a single-machine run, so ``metrics.json`` holds the same figures a serial run
gives, plus a ``fleet`` section (executor, counts, failed bags with reasons). The report gains a per-bag table and,
with a baseline, the comparison; its per-tick pictures are left out (workers send no frames back).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from alpamayo_ros.tools.evaluate import summarize
from alpamayo_ros.tools.fleet.codec import decode_evaluation
from alpamayo_ros.tools.fleet.executor import Outcome, Status
from alpamayo_ros.tools.fleet.inputs import BagEntry
from alpamayo_ros.tools.results import BagEvaluation

ROW_FIGURES = ("ticks", "model_failures", "model_metrics", "baseline_metrics", "agreement", "latency_ms")


def bag_row(entry: BagEntry, outcome: Outcome, ev: BagEvaluation | None) -> dict[str, Any]:
    """One bag's line of rows.jsonl: where it came from, how it ended, and its own figures (summarize of it alone)."""
    row: dict[str, Any] = {
        "bag": str(entry.path),
        "tags": entry.tags,
        "status": outcome.status.value,
        "attempts": outcome.attempts,
        "errors": outcome.errors,
        "elapsed_sec": None if outcome.elapsed_sec is None else round(outcome.elapsed_sec, 3),
        "worker": {k: outcome.worker[k] for k in ("host", "pid") if k in outcome.worker},
    }
    if ev is not None:
        figures = summarize([ev], {})
        row.update((k, figures[k]) for k in ROW_FIGURES)
    return row


class FleetResults:
    """Collects outcomes (streaming rows to disk) and writes the merged outputs."""

    def __init__(self, out: Path, entries: list[BagEntry]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.entries = {str(e.path): e for e in entries}
        self.evals: dict[str, BagEvaluation] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.model: dict[str, Any] = {}
        self._rows: IO[str] = (out / "rows.jsonl").open("w")

    def add(self, outcome: Outcome) -> None:
        ev = None
        if outcome.status is Status.OK and outcome.result is not None:
            ev = decode_evaluation(outcome.result["evaluation"])
            self.evals[outcome.key] = ev
            if not self.model:
                self.model = {**outcome.result["model"], "load_sec": outcome.worker.get("load_sec")}
        self.outcomes[outcome.key] = outcome
        self._rows.write(json.dumps(bag_row(self.entries[outcome.key], outcome, ev)) + "\n")
        self._rows.flush()

    def finish(self, model_desc: dict[str, Any], fleet: dict[str, Any]) -> dict[str, Any]:
        """Write metrics.json and report.html from the bags that finished; return the summary."""
        from alpamayo_ros.tools.report import write_report

        self._rows.close()
        evals = [self.evals[k] for k in self.entries if k in self.evals]
        failed = [o for o in self.outcomes.values() if o.status is Status.FAILED]
        summary = summarize(evals, {**model_desc, **self.model})
        summary["fleet"] = {
            **fleet,
            "bags_total": len(self.entries),
            "bags_ok": len(evals),
            "bags_failed": len(failed),
            "bags_not_run": len(self.entries) - len(self.outcomes),
            "failed": [{"bag": o.key, "attempts": o.attempts, "errors": o.errors} for o in failed],
            "rows": "rows.jsonl",
        }
        (self.out / "metrics.json").write_text(json.dumps(summary, indent=1))
        write_report(self.out, summary, evals)
        return summary

    def append_to_report(self, section: str) -> None:
        path = self.out / "report.html"
        text = path.read_text()
        path.write_text(text.replace("</body></html>", section + "</body></html>"))


def read_rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines() if line.strip()]
