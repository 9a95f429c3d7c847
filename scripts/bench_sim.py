#!/usr/bin/env python3
"""How fast a closed-loop rollout runs, as a multiple of real time: the small driver in lockstep over DDS (the real
node in its own process) and in process (the same tick functions), on the same scenario, one after the other.

    python scripts/bench_sim.py [--scenario lead_vehicle_braking] [--seconds 20] [--width 320 --height 180]

Prints wall seconds per simulated second for each transport (below 1.0: faster than real time) and where the time
went in the node (its own latency figures). A benchmark, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from alpamayo_ros.cli import main as cli_main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="lead_vehicle_braking")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))  # away from other ROS users on this host
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_sim_"))
    rows = []
    for transport in ("inprocess", "dds"):
        run_out = out / transport
        started = time.perf_counter()
        argv = ["sim", "--scenario", args.scenario, "--seed", str(args.seed), "--seconds", str(args.seconds)]
        argv += ["--width", str(args.width), "--height", str(args.height), "--transport", transport]
        code = cli_main([*argv, "--out", str(run_out), "--no-report"])
        total = time.perf_counter() - started
        rollout = json.loads((run_out / "metrics.json").read_text())["rollouts"][0]
        m = rollout["metrics"] or {}
        rows.append((transport, code, rollout["wall_s"], total, m.get("latency_ms_p50"), m.get("missed_plans")))
    print(f"\n{args.scenario} seed {args.seed}, {args.seconds:g} s at {args.width}x{args.height}, the small driver")
    print("transport   exit  rollout wall s  x real time  (with start-up)  node latency p50 ms  missed plans")
    for transport, code, wall, total, latency, missed in rows:
        lat = "n/a" if latency is None else f"{latency:.0f}"
        print(
            f"{transport:10s} {code:5d} {wall:15.1f} {wall / args.seconds:12.2f} {total / args.seconds:16.2f} "
            f"{lat:>20s} {missed!s:>13s}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
