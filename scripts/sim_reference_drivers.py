#!/usr/bin/env python3
"""Closed-loop rollouts of the reference drivers (expert, constant_velocity) on every scenario kind, no ROS.

Prints one row per rollout (metrics of sim/metrics.py, progress relative to the expert on the same scenario and
seed) and per-driver totals; --json writes every rollout's metrics, --report-dir a bird's-eye GIF and time plots
per rollout (sim/rollout_report.py). Rendering is off: these drivers read the world directly.

    python scripts/sim_reference_drivers.py --seeds 1000 1001 --seconds 20
    python scripts/sim_reference_drivers.py --scenarios red_light_stop_line --seeds 1000 --report-dir /tmp/sim
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from alpamayo_ros.sim import SCENARIOS
from alpamayo_ros.sim.closed_loop import REFERENCE_DRIVERS, ClosedLoopWorld, run_rollout
from alpamayo_ros.sim.metrics import RolloutMetrics, evaluate_rollout
from alpamayo_ros.sim.rollout_report import write_rollout_report

COLUMNS = (
    "scenario                   seed driver            score fault any close red off progress comfort min_ttc_s "
    "min_gap_m wall_s   (flags: 1 = yes)"
)


def _row(m: RolloutMetrics, wall_s: float) -> str:
    flags = (m.collision_at_fault, m.collision_any, m.close_encounter, m.red_light_violation, m.offroad)
    fault, hit, close, red, off = (int(f) for f in flags)
    return (
        f"{m.scenario:26s} {m.seed:4d} {m.driver:17s} {m.scene_score:5.2f} {fault:5d} {hit:3d} {close:5d} {red:3d} "
        f"{off:3d} {m.progress_ratio:8.2f} {int(m.comfortable):7d} {m.min_ttc_s:9.2f} "
        f"{m.min_distance_to_obstacle_m:9.2f} {wall_s:6.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), metavar="NAME")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1000, 1001])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="write every rollout's metrics here")
    parser.add_argument("--report-dir", type=Path, help="write a GIF and time plots per rollout here")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        print(f"error: unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if args.seconds < 2.0:
        print(f"error: --seconds {args.seconds} is too short (need >= 2 s)", file=sys.stderr)
        return 2

    print(COLUMNS)
    results: list[RolloutMetrics] = []
    walls: dict[str, float] = {}
    for name in args.scenarios:
        for seed in args.seeds:
            expert_progress: float | None = None
            for driver_name in ("expert", "constant_velocity"):
                world = ClosedLoopWorld(name, seed, args.seconds, render=False)
                rollout = run_rollout(world, REFERENCE_DRIVERS[driver_name](world))
                metrics = evaluate_rollout(rollout, expert_progress)
                if driver_name == "expert":
                    expert_progress = metrics.progress_m
                results.append(metrics)
                walls[driver_name] = walls.get(driver_name, 0.0) + rollout.wall_s
                print(_row(metrics, rollout.wall_s), flush=True)
                for failure in metrics.failures:
                    print(f"    {failure.condition} at {failure.t_s:.1f} s: {failure.detail}")
                if args.report_dir is not None:
                    write_rollout_report(rollout, metrics, args.report_dir / f"{name}_{seed}_{driver_name}")
    print("\ntotals: rollouts, passed, at-fault, close encounters, red-light, offroad, mean score, sim s per wall s")
    for driver_name in ("expert", "constant_velocity"):
        rows = [m for m in results if m.driver == driver_name]
        sim_s = len(rows) * args.seconds
        print(
            f"  {driver_name:18s} {len(rows):3d} {sum(m.passed for m in rows):3d} "
            f"{sum(m.collision_at_fault for m in rows):3d} {sum(m.close_encounter for m in rows):3d} "
            f"{sum(m.red_light_violation for m in rows):3d} {sum(m.offroad for m in rows):3d} "
            f"{sum(m.scene_score for m in rows) / max(len(rows), 1):5.2f} {sim_s / max(walls[driver_name], 1e-9):6.1f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([m.to_dict() for m in results], indent=1))
    return 0


if __name__ == "__main__":
    t_start = time.perf_counter()
    code = main()
    print(f"wall time {time.perf_counter() - t_start:.1f} s")
    sys.exit(code)
