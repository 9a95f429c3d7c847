#!/usr/bin/env python3
"""Throughput of the fleet executors on this machine: N short bags serially vs on a local Ray with W workers.

    python scripts/bench_fleet.py [--bags 8] [--seconds 5] [--workers 2] [--model default] [--out out/bench_fleet]

Synthesises the bags it lacks (scenarios in turn, 320x180), then, in one run: the serial executor over all bags;
the Ray executor over all bags with W workers, timed with and without starting the local Ray; and one bag serially
and on Ray (1 worker), whose difference is Ray's fixed overhead. Every timing includes the workers' model loads.
Checks that both executors gave the same per-bag numbers, and prints everything as JSON.
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
from alpamayo_ros.tools.fleet.executor import Executor, Outcome, SerialExecutor, Status
from alpamayo_ros.tools.fleet.inputs import BagEntry, is_bag
from alpamayo_ros.tools.fleet.progress import Progress
from alpamayo_ros.tools.fleet.ray_executor import RayExecutor, start_local_ray
from alpamayo_ros.tools.fleet.units import EvaluateBag, ModelLoader
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


def timed(executor: Executor, units: list[EvaluateBag], loader: ModelLoader) -> tuple[float, dict[str, Outcome]]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="default", help="model_path of the torch backend (default: the small driver)")
    ap.add_argument("--out", type=Path, default=Path("out/bench_fleet"))
    args = ap.parse_args()
    import ray

    bags = make_bags(args.out / "bags", args.bags, args.seconds)
    loader = ModelLoader(ModelSpec(backend="torch", model_path=args.model))
    units = [EvaluateBag(BagEntry(b), NodeParams()) for b in bags]

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

    ticks = sum(len(o.result["evaluation"]["ticks"]) for o in serial.values() if o.result)
    ray_total = ray_start_sec + ray_run_sec + ray_stop_sec
    report = {
        "bags": len(bags),
        "seconds_per_bag": args.seconds,
        "scored_ticks": ticks,
        "model": args.model,
        "workers": args.workers,
        "serial_sec": round(serial_sec, 2),
        "ray_run_sec (cluster already up)": round(ray_run_sec, 2),
        "ray_start_sec": round(ray_start_sec, 2),
        "ray_stop_sec": round(ray_stop_sec, 2),
        "speedup (cluster already up)": round(serial_sec / ray_run_sec, 2),
        "speedup (local Ray started and stopped by the run)": round(serial_sec / ray_total, 2),
        "one_bag_serial_sec": round(one_serial_sec, 2),
        "one_bag_ray_sec (1 worker, cluster up)": round(one_ray_run_sec, 2),
        "ray_overhead_one_bag_sec (cluster up)": round(one_ray_run_sec - one_serial_sec, 2),
        "ray_overhead_one_bag_sec (with start and stop)": round(
            one_ray_run_sec + ray_start_sec + ray_stop_sec - one_serial_sec, 2
        ),
        "same_per_bag_numbers": per_bag_numbers(serial) == per_bag_numbers(on_ray),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
