#!/usr/bin/env python3
"""Throughput of the fleet executors on this machine: N short bags (or rollouts) serially vs on a local Ray.

    python scripts/bench_fleet.py [--bags 8] [--seconds 5] [--workers 2] [--model default] [--out out/bench_fleet]
    python scripts/bench_fleet.py --sim [--rollouts 4] [--seconds 8] [--workers 2] [--model default]

Bags: synthesises the bags it lacks (scenarios in turn, 320x180), then, in one run: the serial executor over all
bags; the Ray executor over all bags with W workers, timed with and without starting the local Ray; and one bag
serially and on Ray (1 worker), whose difference is Ray's fixed overhead. ``--sim``: the same for closed-loop
rollouts of the node driver in process (one per scenario kind in turn, seed 1000, 320x180, no report files), each
unit one scenario and seed as ``alpamayo-ros sim --executor ray`` runs them. Every timing includes the workers'
model loads. Checks that both executors gave the same per-unit numbers, and prints everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.sim import SCENARIOS, generate
from alpamayo_ros.tools import sim
from alpamayo_ros.tools.fleet.executor import Executor, Outcome, SerialExecutor, Status
from alpamayo_ros.tools.fleet.inputs import BagEntry, is_bag
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.ray_executor import RayExecutor, start_local_ray
from alpamayo_ros.tools.fleet.rollouts import RolloutSet, SimWorkerLoader
from alpamayo_ros.tools.fleet.units import EvaluateBag, Loader, ModelLoader, WorkUnit
from alpamayo_ros.tools.synth import write_scenario_bag


def make_bags(root: Path, count: int, seconds: float) -> list[Path]:
    bags = []
    for i in range(count):
        name = sorted(SCENARIOS)[i % len(SCENARIOS)]
        bag = root / f"{i:02d}_{name}_{seconds:g}s"
        if not is_bag(bag):
            write_scenario_bag(generate(name, 2000 + i, seconds, 320, 180), bag, progress=False)
        bags.append(bag)
    return bags


def timed(executor: Executor, units: list[WorkUnit], loader: Loader) -> tuple[float, dict[str, Outcome]]:
    started = time.perf_counter()
    got = {o.key: o for o in executor.run(units, loader, Progress(len(units), enabled=False))}
    assert all(o.status is Status.OK for o in got.values()), [o.errors for o in got.values()]
    return time.perf_counter() - started, got


def per_bag_numbers(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """Per bag, the per-tick errors and verdicts (latencies left out: wall clock)."""
    out = {}
    for key, o in outcomes.items():
        assert o.result is not None
        ticks = o.result["evaluation"]["ticks"]
        out[key] = [{k: v for k, v in t.items() if k != "latency_ms"} for t in ticks]
    return out


def per_rollout_numbers(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """Per rollout, its metrics (latencies left out: wall clock)."""
    out = {}
    for key, o in outcomes.items():
        assert o.result is not None
        for r in o.result["rollouts"]:
            out[f"{key} {r['driver']}"] = {k: v for k, v in r["metrics"].items() if not k.startswith("latency")}
    return out


def bag_job(args: argparse.Namespace, spec: ModelSpec) -> tuple[list[WorkUnit], Loader, dict[str, Any]]:
    bags = make_bags(args.out / "bags", args.bags, args.seconds)
    units: list[WorkUnit] = [EvaluateBag(BagEntry(b), NodeParams()) for b in bags]
    return units, ModelLoader(spec), {"bags": len(bags), "seconds_per_bag": args.seconds}


def sim_job(args: argparse.Namespace, spec: ModelSpec) -> tuple[list[WorkUnit], Loader, dict[str, Any]]:
    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    argv = ["--out", str((args.out / "sim").resolve()), "--seconds", str(args.seconds), "--transport", "inprocess"]
    sim_args = parser.parse_args([*argv, "--no-report"])
    params = NodeParams(model=spec)
    names = [sorted(SCENARIOS)[i % len(SCENARIOS)] for i in range(args.rollouts)]
    units: list[WorkUnit] = [
        RolloutSet(name, 1000 + i // len(SCENARIOS), ("node",), sim_args) for i, name in enumerate(names)
    ]
    loader = SimWorkerLoader(params, sim_args, needs_node=True)
    return units, loader, {"rollouts": len(units), "seconds_per_rollout": args.seconds, "driver": "node, in process"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", action="store_true", help="closed-loop rollouts instead of bags")
    ap.add_argument("--bags", type=int, default=8)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=None, help="per bag (default 5) or rollout (default 8)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="default", help="model_path of the torch backend (default: the small driver)")
    ap.add_argument("--out", type=Path, default=Path("out/bench_fleet"))
    args = ap.parse_args()
    import ray

    args.seconds = args.seconds or (8.0 if args.sim else 5.0)
    spec = ModelSpec(backend="torch", model_path=args.model)
    units, loader, what = (sim_job if args.sim else bag_job)(args, spec)
    numbers = per_rollout_numbers if args.sim else per_bag_numbers

    serial_sec, serial = timed(SerialExecutor(), units, loader)
    one_serial_sec, _ = timed(SerialExecutor(), units[:1], loader)

    started = time.perf_counter()
    start_local_ray(args.workers)
    ray_start_sec = time.perf_counter() - started
    ray_run_sec, on_ray = timed(RayExecutor(workers=args.workers), units, loader)
    one_ray_run_sec, _ = timed(RayExecutor(workers=1), units[:1], loader)
    started = time.perf_counter()
    ray.shutdown()
    ray_stop_sec = time.perf_counter() - started

    ray_total = ray_start_sec + ray_run_sec + ray_stop_sec
    report = {
        **what,
        "model": args.model,
        "workers": args.workers,
        "serial_sec": round(serial_sec, 2),
        "ray_run_sec (cluster already up)": round(ray_run_sec, 2),
        "ray_start_sec": round(ray_start_sec, 2),
        "ray_stop_sec": round(ray_stop_sec, 2),
        "speedup (cluster already up)": round(serial_sec / ray_run_sec, 2),
        "speedup (local Ray started and stopped by the run)": round(serial_sec / ray_total, 2),
        "one_unit_serial_sec": round(one_serial_sec, 2),
        "one_unit_ray_sec (1 worker, cluster up)": round(one_ray_run_sec, 2),
        "ray_overhead_one_unit_sec (cluster up)": round(one_ray_run_sec - one_serial_sec, 2),
        "ray_overhead_one_unit_sec (with start and stop)": round(
            one_ray_run_sec + ray_start_sec + ray_stop_sec - one_serial_sec, 2
        ),
        "same_per_unit_numbers": numbers(serial) == numbers(on_ray),
    }
    if args.sim:  # the small driver's plans may differ in the last bits between processes
        a, b = numbers(serial), numbers(on_ray)
        report["max_progress_difference_m"] = max(abs(a[k]["progress_m"] - b[k]["progress_m"]) for k in a)
    else:
        report["scored_ticks"] = sum(len(o.result["evaluation"]["ticks"]) for o in serial.values() if o.result)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
