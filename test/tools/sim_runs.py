"""Helpers of the fleet simulation tests: run ``alpamayo-ros sim`` small, and what two runs must agree on exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alpamayo_ros.cli import main
from alpamayo_ros.tools import bagio

TEST_POLICY_PARAMS = '"/**":\n  ros__parameters:\n    model:\n      backend: test_policy\n'
# short rollouts at a small image size with the deterministic test policy: a few seconds each
SMALL = ["--seconds", "3", "--width", "96", "--height", "54", "--no-report"]


def sim(params_file: Path, out: Path, *argv: str) -> int:
    return main(["sim", "--params-file", str(params_file), "--out", str(out), *SMALL, *argv])


def figures(out: Path) -> dict[str, Any]:
    """metrics.json without what differs between any two runs: wall-clock times, latencies, the fleet section."""
    summary = json.loads((out / "metrics.json").read_text())
    summary.pop("fleet", None)
    for totals in summary["drivers"].values():
        totals.pop("wall_per_sim_s")
    for rollout in summary["rollouts"]:
        rollout.pop("wall_s")
        rollout["files"] = {k: str(Path(v).relative_to(out)) for k, v in rollout["files"].items()}
        if rollout["metrics"] is not None:
            rollout["metrics"] = {k: v for k, v in rollout["metrics"].items() if not k.startswith("latency")}
    return summary


def untimed_junit(out: Path) -> str:
    import re

    return re.sub(r' time="[0-9.]+"', "", (out / "junit.xml").read_text())


def world_tracks(out: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Per node rollout, (stamp, CDR bytes) of every odometry message the world sent: the driven path, bit for bit."""
    return {
        rollout.name: [(r.log_time_ns, r.raw) for r in bagio.read_bags([rollout / "bag"], [bagio.ODOM_TOPIC])]
        for rollout in sorted((out / "rollouts").glob("*_node"))
    }
