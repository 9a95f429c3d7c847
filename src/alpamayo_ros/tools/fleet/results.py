"""The driver side of a fleet evaluation: per-bag rows as they arrive, then the merged single-machine outputs.

Each finished bag is decoded and its row appended to ``rows.jsonl`` at once (a run that is stopped keeps what
finished). At the end the bags are merged in input order, whatever order they finished in, through the same
``summarize`` and ``write_report`` as a single-machine run, so ``metrics.json`` holds the same figures a serial run
gives, plus a ``fleet`` section (executor, counts, failed bags with reasons). The report gains a per-bag table and,
with a baseline, the comparison; its per-tick pictures are left out (workers send no frames back).

``RowLog``, ``append_to_report`` and ``worker_row`` serve the simulation's outputs too (``rollout_results``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from alpamayo_ros.tools.evaluate import summarize
from alpamayo_ros.tools.fleet.codec import decode_evaluation
from alpamayo_ros.tools.fleet.executor import Outcome, Status
from alpamayo_ros.tools.fleet.inputs import BagEntry
from alpamayo_ros.tools.fleet.report_sections import bags_section
from alpamayo_ros.tools.results import BagEvaluation

ROW_FIGURES = ("ticks", "model_failures", "model_metrics", "baseline_metrics", "agreement", "latency_ms")


def bag_row(entry: BagEntry, outcome: Outcome, ev: BagEvaluation | None) -> dict[str, Any]:
    """One bag's line of rows.jsonl: where it came from, how it ended, and its own figures (summarize of it alone)."""
    row: dict[str, Any] = {"bag": str(entry.path), "tags": entry.tags, **worker_row(outcome)}
    if ev is not None:
        figures = summarize([ev], {})
        row.update((k, figures[k]) for k in ROW_FIGURES)
    return row


class RowLog:
    """rows.jsonl: one line per finished unit (a rollout set writes a line per rollout), flushed as it is written, so
    a stopped run keeps what finished."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = (out / "rows.jsonl").open("w")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def append_to_report(out: Path, section: str) -> None:
    """Add an HTML section at the end of ``out/report.html``."""
    path = out / "report.html"
    text = path.read_text()
    path.write_text(text.replace("</body></html>", section + "</body></html>"))


def worker_row(outcome: Outcome) -> dict[str, Any]:
    """How a unit ended and where it ran, the part of a row that every command's rows share."""
    return {
        "status": outcome.status.value,
        "attempts": outcome.attempts,
        "errors": outcome.errors,
        "elapsed_sec": None if outcome.elapsed_sec is None else round(outcome.elapsed_sec, 3),
        "worker": {k: outcome.worker[k] for k in ("host", "pid", "ros_domain_id") if k in outcome.worker},
    }


class FleetResults:
    """Collects the bags' outcomes (streaming rows to disk) and writes the merged evaluation outputs.

    ``model_desc``: the model fields of metrics.json the driver knows (source, backend, path, samples).
    """

    def __init__(self, out: Path, entries: list[BagEntry], model_desc: dict[str, Any] | None = None) -> None:
        self.out = out
        self.entries = {str(e.path): e for e in entries}
        self.model_desc = model_desc or {}
        self.evals: dict[str, BagEvaluation] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.model: dict[str, Any] = {}
        self._rows = RowLog(out)

    def add(self, outcome: Outcome) -> None:
        ev = None
        if outcome.status is Status.OK and outcome.result is not None:
            ev = decode_evaluation(outcome.result["evaluation"])
            self.evals[outcome.key] = ev
            if not self.model:
                self.model = {**outcome.result["model"], "load_sec": outcome.worker.get("load_sec")}
        self.outcomes[outcome.key] = outcome
        self._rows.write(bag_row(self.entries[outcome.key], outcome, ev))

    def finish(self, fleet: dict[str, Any]) -> dict[str, Any]:
        """Write metrics.json and report.html from the bags that finished; return the summary."""
        from alpamayo_ros.tools.report import write_report

        self._rows.close()
        evals = [self.evals[k] for k in self.entries if k in self.evals]
        failed = [o for o in self.outcomes.values() if o.status is Status.FAILED]
        summary = summarize(evals, {**self.model_desc, **self.model})
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

    def rows_section(self) -> str:
        return bags_section(read_rows(self.out))

    def print_summary(self, summary: dict[str, Any]) -> None:
        from alpamayo_ros.tools.evaluate import format_summary

        print(format_summary(summary))
        print_counts(summary["fleet"], "bag", "ok", [(f["bag"], f) for f in summary["fleet"]["failed"]])

    def files(self) -> dict[str, Path]:
        return {name: self.out / f for name, f in (("report", "report.html"), ("metrics", "metrics.json"))}

    def failed(self, summary: dict[str, Any]) -> bool:
        return bool(summary["fleet"]["bags_failed"])

    def not_run(self, summary: dict[str, Any]) -> str:
        return f"{summary['fleet']['bags_not_run']} bags"


def print_counts(fleet: dict[str, Any], unit: str, done: str, failed: list[tuple[str, dict[str, Any]]]) -> None:
    """The fleet section's counts of ``unit``s (``<unit>s_<done>``, ``_failed``, ``_not_run``, ``_total``) and a line
    per failed unit: its name and the ``attempts`` and ``errors`` of its entry in ``fleet["failed"]``."""
    counts = [fleet[f"{unit}s_{key}"] for key in (done, "failed", "not_run", "total")]
    print(
        f"{unit}s: {counts[0]} {done}, {counts[1]} failed, {counts[2]} not run of {counts[3]} "
        f"({fleet['executor']}, {fleet['wall_sec']:.1f} s)"
    )
    for name, f in failed:
        print(f"failed: {name} after {f['attempts']} attempts: {f['errors'][-1]}")


def read_rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines() if line.strip()]
