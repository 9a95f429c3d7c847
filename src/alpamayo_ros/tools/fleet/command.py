"""``alpamayo-ros evaluate`` over many bags: the fleet flags, the executor choice, outputs, gates and exit code.

Exit codes: 0 every bag evaluated and every gate holds; 1 a gate failed or a bag failed after its retries;
2 bad input (a manifest entry, a gate, a baseline file, Ray missing); 130 interrupted (Ctrl-C: what finished is
written, the rest is listed as not run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools.fleet.executor import Executor, SerialExecutor, WorkerStartError
from alpamayo_ros.tools.fleet.gates import Gate, GateError, check_gate, compare, parse_gates
from alpamayo_ros.tools.fleet.inputs import InputError, is_bag, resolve_inputs
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.report_sections import bags_section, comparison_section, format_comparison
from alpamayo_ros.tools.fleet.results import FleetResults, read_rows
from alpamayo_ros.tools.fleet.units import EvaluateBag, Loader, ModelLoader, WorkUnit

PROG = "alpamayo-ros evaluate"
EXIT_INTERRUPTED = 130


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "fleet", "many bags (directories of bags, globs, manifest files 'PATH [key=value ...]') on one or many machines"
    )
    group.add_argument(
        "--executor", choices=("serial", "ray"), default=None, help="serial: this process (default); ray: Ray workers"
    )
    group.add_argument(
        "--address", default=None, help="Ray cluster to join (auto, ray://host:10001); default: local Ray on 127.0.0.1"
    )
    group.add_argument("--workers", type=int, default=None, help="Ray workers (default: the cluster's CPUs or GPUs)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each Ray worker holds (fractions ok)")
    group.add_argument("--retries", type=int, default=1, help="extra attempts for a bag that failed (default 1)")
    group.add_argument("--task-timeout", type=float, default=None, help="seconds one bag may take (default: none)")
    group.add_argument("--baseline", type=Path, default=None, help="metrics.json of an earlier run to compare with")
    group.add_argument(
        "--fail-on", default="", help="gates, e.g. ade_6.4s:+5%%,model_failures:>0 (exit 1 when one fails)"
    )
    group.add_argument("--no-progress", action="store_true", help="no progress line")


def fleet_requested(args: argparse.Namespace) -> bool:
    """True when the run needs the fleet path: a flag of it, or an input only the fleet reads (a glob, a directory
    holding bags, a manifest file). Anything else stays on the single-bag path, whose checks say exactly what is
    wrong with a path that should have been a bag."""
    flags = args.executor is not None or args.baseline is not None or bool(args.fail_on)
    return flags or any(_fleet_input(Path(b)) for b in args.bags)


def _fleet_input(path: Path) -> bool:
    if is_bag(path):
        return False
    if any(ch in str(path) for ch in "*?["):
        return True
    if path.is_dir():
        return any(p.name == "metadata.yaml" for p in path.rglob("metadata.yaml"))
    return path.is_file()


def _refuse(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"--baseline {path}: {exc}") from None
    if not isinstance(data, dict) or "model_metrics" not in data:
        raise InputError(f"--baseline {path}: not an evaluation metrics.json (no model_metrics)")
    return data


def make_executor(args: argparse.Namespace) -> Executor:
    timeout = args.task_timeout
    if args.executor != "ray":
        return SerialExecutor(retries=args.retries, task_timeout_sec=timeout)
    from alpamayo_ros.tools.fleet.ray_executor import RayExecutor

    return RayExecutor(
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        address=args.address,
        retries=args.retries,
        task_timeout_sec=timeout,
    )


def _check_flags(args: argparse.Namespace, gates: list[Gate]) -> str | None:
    if args.predictions is not None:
        return "--predictions scores one bag in this process: not with fleet inputs or flags"
    if args.retries < 0 or (args.workers is not None and args.workers < 1) or args.gpus_per_worker < 0:
        return "--retries must be >= 0, --workers >= 1, --gpus-per-worker >= 0"
    if args.task_timeout is not None and args.task_timeout <= 0:
        return f"--task-timeout {args.task_timeout}: must be > 0 seconds"
    if args.executor != "ray" and (args.address or args.workers or args.gpus_per_worker):
        return "--address, --workers and --gpus-per-worker need --executor ray"
    if args.baseline is None and any(g.op == "+" for g in gates):
        return f"--fail-on {','.join(g.text for g in gates if g.op == '+')}: a change needs --baseline"
    if args.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return "--executor ray needs Ray: pip install -r requirements/fleet.txt (or the package's [fleet] extra)"
    return None


def collect(
    executor: Executor, units: list[WorkUnit], loader: Loader, results: FleetResults, progress: Progress
) -> bool:
    """Run the units, handing each outcome to ``results`` as it arrives; True when Ctrl-C stopped the run."""
    try:
        for outcome in executor.run(units, loader, progress):
            results.add(outcome)
    except KeyboardInterrupt:
        return True
    finally:
        progress.close()
    return False


def run_fleet(args: argparse.Namespace, params: NodeParams, spec: ModelSpec | None) -> int:
    """Evaluate every input bag on the chosen executor; write the merged outputs; apply the gates."""
    try:
        gates = parse_gates(args.fail_on)
        problem = _check_flags(args, gates)
        if problem is not None:
            return _refuse(problem)
        baseline = _load_baseline(args.baseline) if args.baseline is not None else None
        entries = resolve_inputs([str(b) for b in args.bags])
    except (InputError, GateError) as exc:
        return _refuse(str(exc))
    assert spec is not None
    executor = make_executor(args)
    units: list[WorkUnit] = [EvaluateBag(entry, params, args.max_ticks) for entry in entries]
    results = FleetResults(args.out, entries)
    progress = Progress(len(units), enabled=not args.no_progress)
    started = time.perf_counter()
    try:
        interrupted = collect(executor, units, ModelLoader(spec), results, progress)
    except WorkerStartError as exc:  # no model on a worker, no cluster at --address, a local Ray off loopback
        return _refuse(str(exc))
    model_desc = {
        "source": "offline",
        "backend": spec.backend,
        "model_path": spec.model_path,
        "num_samples": spec.num_samples,
    }
    fleet = {
        "executor": executor.name,
        "address": getattr(executor, "address", None),
        "workers_started": getattr(executor, "started_workers", 1),
        "wall_sec": round(time.perf_counter() - started, 2),
        "interrupted": interrupted,
    }
    summary = results.finish(model_desc, fleet)
    results.append_to_report(bags_section(read_rows(args.out)))
    failures = [msg for g in gates if (msg := check_gate(g, summary, baseline)) is not None]
    if baseline is not None:
        rows = compare(summary, baseline, gates)
        (args.out / "comparison.json").write_text(json.dumps({"rows": rows, "gate_failures": failures}, indent=1))
        results.append_to_report(comparison_section(rows, failures, args.baseline))
        print(format_comparison(rows))
    return _report(args, summary, failures)


def _report(args: argparse.Namespace, summary: dict[str, Any], failures: list[str]) -> int:
    from alpamayo_ros.tools.evaluate import format_summary

    fl = summary["fleet"]
    print(format_summary(summary))
    print(
        f"bags: {fl['bags_ok']} ok, {fl['bags_failed']} failed, {fl['bags_not_run']} not run of {fl['bags_total']} "
        f"({fl['executor']}, {fl['wall_sec']:.1f} s)"
    )
    for bag in fl["failed"]:
        print(f"failed: {bag['bag']} after {bag['attempts']} attempts: {bag['errors'][-1]}")
    for line in failures:
        print(f"gate failed: {line}")
    print(f"report: {args.out / 'report.html'}\nmetrics: {args.out / 'metrics.json'}\nrows: {args.out / 'rows.jsonl'}")
    if fl["interrupted"]:
        print(f"{PROG}: interrupted: {fl['bags_not_run']} bags not run; what finished is written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if failures or fl["bags_failed"] else 0
