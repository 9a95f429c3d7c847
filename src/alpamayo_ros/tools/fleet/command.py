"""The fleet path of ``alpamayo-ros evaluate`` and ``alpamayo-ros sim``: executor, outputs, gates and exit code.

``run_job`` is what both commands share: run the units on the chosen executor, hand each outcome to the command's
outputs as it arrives, write the merged outputs, compare with the baseline and apply the gates. ``run_fleet`` is
evaluate's entry (bags); ``sim_command.run_sim_fleet`` is the simulator's (rollouts).

Exit codes: 0 every unit ran and every gate holds; 1 a gate failed or a unit failed after its retries (sim: or a
rollout ended in an error, as without the fleet path); 2 bad input (a manifest entry, a gate, a baseline file, Ray
missing, a worker that cannot load the model); 130 interrupted (Ctrl-C: what finished is written, the rest is
listed as not run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools.fleet import flags
from alpamayo_ros.tools.fleet.executor import Executor, Outcome, WorkerStartError
from alpamayo_ros.tools.fleet.flags import flag_problem, fleet_flags_given, make_executor
from alpamayo_ros.tools.fleet.gates import EVALUATE_METRICS, Gate, GateError, Metric, check_gate, compare, parse_gates
from alpamayo_ros.tools.fleet.inputs import InputError, is_bag, resolve_inputs
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.report_sections import comparison_section, format_comparison
from alpamayo_ros.tools.fleet.results import FleetResults, append_to_report
from alpamayo_ros.tools.fleet.units import EvaluateBag, Loader, ModelLoader, WorkUnit

PROG = "alpamayo-ros evaluate"
EXIT_INTERRUPTED = 130


class Outputs(Protocol):
    """What a command makes of the outcomes: rows as they arrive, then its single-machine outputs, merged."""

    out: Path

    def add(self, outcome: Outcome) -> None: ...

    def finish(self, fleet: dict[str, Any]) -> dict[str, Any]:
        """Write metrics.json (with ``fleet`` as its fleet section) and the report; return the summary."""
        ...

    def rows_section(self) -> str:
        """The report's per-unit table."""
        ...

    def print_summary(self, summary: dict[str, Any]) -> None: ...

    def files(self) -> dict[str, Path]:
        """What to print at the end: label -> path of an output."""
        ...

    def failed(self, summary: dict[str, Any]) -> bool:
        """Whether some unit failed (exit 1 without any gate)."""
        ...

    def not_run(self, summary: dict[str, Any]) -> str:
        """How many units an interrupted run left out, in words ("3 bags")."""
        ...


@dataclass
class FleetJob:
    """One command's fleet run: its units, the loader of a worker's model and what it makes of the outcomes."""

    prog: str
    unit: str  # what one unit is, for the progress line
    units: list[WorkUnit]
    loader: Loader
    outputs: Outputs
    metrics: dict[str, Metric]  # the names --fail-on and the comparison know


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """evaluate's fleet flags."""
    flags.add_fleet_arguments(
        parser,
        "many bags (directories of bags, globs, manifest files 'PATH [key=value ...]') on one or many machines",
        "ade_6.4s:+5%,model_failures:>0",
    )


def fleet_requested(args: argparse.Namespace) -> bool:
    """True when the run needs the fleet path: a flag of it, or an input only the fleet reads (a glob, a directory
    holding bags, a manifest file). Anything else stays on the single-bag path, whose checks say exactly what is
    wrong with a path that should have been a bag."""
    return fleet_flags_given(args) or any(_fleet_input(Path(b)) for b in args.bags)


def _fleet_input(path: Path) -> bool:
    if is_bag(path):
        return False
    if any(ch in str(path) for ch in "*?["):
        return True
    if path.is_dir():
        return any(p.name == "metadata.yaml" for p in path.rglob("metadata.yaml"))
    return path.is_file()


def refuse(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return 2


def load_baseline(path: Path, required: str, kind: str) -> dict[str, Any]:
    """The baseline run's metrics.json; InputError unless it is one of ``kind`` (it has the key ``required``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"--baseline {path}: {exc}") from None
    if not isinstance(data, dict) or required not in data:
        raise InputError(f"--baseline {path}: not {kind} metrics.json (no {required})")
    return data


def collect(executor: Executor, units: list[WorkUnit], loader: Loader, results: Outputs, progress: Progress) -> bool:
    """Run the units, handing each outcome to ``results`` as it arrives; True when Ctrl-C stopped the run."""
    try:
        for outcome in executor.run(units, loader, progress):
            results.add(outcome)
    except KeyboardInterrupt:
        return True
    finally:
        progress.close()
    return False


def run_job(args: argparse.Namespace, job: FleetJob, gates: list[Gate], baseline: dict[str, Any] | None) -> int:
    """Run ``job`` on the executor the flags choose; write, compare, gate; the exit code (module docstring)."""
    executor = make_executor(args)
    progress = Progress(len(job.units), unit=job.unit, enabled=not args.no_progress)
    started = time.perf_counter()
    try:
        interrupted = collect(executor, job.units, job.loader, job.outputs, progress)
    except WorkerStartError as exc:  # no model on a worker, no cluster at --address, a local Ray off loopback
        return refuse(job.prog, str(exc))
    fleet = {
        "executor": executor.name,
        "address": getattr(executor, "address", None),
        "workers_started": getattr(executor, "started_workers", 1),
        "wall_sec": round(time.perf_counter() - started, 2),
        "interrupted": interrupted,
    }
    out = job.outputs.out
    summary = job.outputs.finish(fleet)
    append_to_report(out, job.outputs.rows_section())
    failures = [msg for g in gates if (msg := check_gate(g, summary, baseline)) is not None]
    if baseline is not None:
        rows = compare(summary, baseline, gates, job.metrics)
        (out / "comparison.json").write_text(json.dumps({"rows": rows, "gate_failures": failures}, indent=1))
        append_to_report(out, comparison_section(rows, failures, args.baseline))
        print(format_comparison(rows))
    job.outputs.print_summary(summary)
    for line in failures:
        print(f"gate failed: {line}")
    for label, path in {**job.outputs.files(), "rows": out / "rows.jsonl"}.items():
        print(f"{label}: {path}")
    if interrupted:
        print(
            f"{job.prog}: interrupted: {job.outputs.not_run(summary)} not run; what finished is written",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if failures or job.outputs.failed(summary) else 0


def run_fleet(args: argparse.Namespace, params: NodeParams, spec: ModelSpec | None) -> int:
    """Evaluate every input bag on the chosen executor; write the merged outputs; apply the gates."""
    try:
        gates = parse_gates(args.fail_on, EVALUATE_METRICS)
        if args.predictions is not None:
            return refuse(PROG, "--predictions scores one bag in this process: not with fleet inputs or flags")
        problem = flag_problem(args, gates)
        if problem is not None:
            return refuse(PROG, problem)
        baseline = None
        if args.baseline is not None:
            baseline = load_baseline(args.baseline, "model_metrics", "an evaluation")
        entries = resolve_inputs([str(b) for b in args.bags])
    except (InputError, GateError) as exc:
        return refuse(PROG, str(exc))
    assert spec is not None
    model_desc = {
        "source": "offline",
        "backend": spec.backend,
        "model_path": spec.model_path,
        "num_samples": spec.num_samples,
    }
    job = FleetJob(
        prog=PROG,
        unit="bag",
        units=[EvaluateBag(entry, params, args.max_ticks) for entry in entries],
        loader=ModelLoader(spec),
        outputs=FleetResults(args.out, entries, model_desc),
        metrics=EVALUATE_METRICS,
    )
    return run_job(args, job, gates, baseline)
