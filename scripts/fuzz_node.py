#!/usr/bin/env python3
"""Hostile inputs against the real alpamayo_node: each case of the hardening issue, injected into a stream of good
frames over real DDS, and what the node did about it.

The node runs in its own process (``alpamayo-ros node``, sim time, a private ROS_DOMAIN_ID); this process feeds seven
synchronized cameras (one of them JPEG) and 50 Hz odometry and injects one case at a time. Per case:

- alive: the node process is still running afterwards;
- bad plans: received plans that could only have come from a bad message (``hostile_inputs.tainted_plans``: t0
  against the bad frames' stamps and the model's frame offsets, non-finite poses, the duplicate odometry pose);
- diagnostic: the affected camera's / odometry's own status goes WARN and names the problem (``last_error``);
- recovery: seconds from the last bad message leaving this process to the next plan newer than it arriving;
- peak RSS of the node during the case.

    python scripts/fuzz_node.py [--cases png_bomb,tiny_1x1] [--size 540x960] [--backend torch --model default]
                                [--json out/fuzz.json] [--domain-id N]

Exits 1 when a case fails (node dead, a bad plan, no diagnostic, no recovery), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from node_harness import (
    RssSampler,
    chosen,
    median,
    model_rig,
    node_command,
    plan_latencies,
    prepare_environment,
    print_table,
    received,
    start_feeder,
    start_node,
    wait_for_plans,
    wait_until,
)

RAW_CAMERA = "camera_cross_right_120fov"
JPEG_CAMERA = "camera_front_tele_30fov"
ANCHOR_CAMERA = "camera_front_wide_120fov"
DIAGNOSTIC_TIMEOUT_S = 8.0
RECOVERY_TIMEOUT_S = 20.0


def parse_size(text: str) -> tuple[int, int]:
    """'540x960' (height x width) -> (540, 960); argparse reports anything else."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 540x960 (height x width), got {text!r}") from None
    if min(height, width) < 32:
        raise argparse.ArgumentTypeError(f"size {text} is too small (at least 32 px a side)")
    return height, width


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=parse_size, default=(540, 960), help="camera frames HxW (default 540x960)")
    parser.add_argument("--backend", default="torch", help="model.backend of the node (torch, test_policy, ...)")
    parser.add_argument("--model", default="default", help="model.model_path of the node")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--log-dir", type=Path, help="node log folder (default: a temporary one)")
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: 30 + pid %% 60)")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="model load + first plans limit (s)")
    parser.add_argument("--machine", default="", help="where this runs, for the record (e.g. '2-core CPU, shared')")


def _status(feeder: Any, stream: str) -> tuple[int, dict[str, str]] | None:
    name = stream if stream == "odometry" else f"camera {stream}"
    st = feeder.status(name)
    return None if st is None else (st[0], st[2])


def _rejected(feeder: Any, stream: str) -> int:
    st = _status(feeder, stream)
    return 0 if st is None else int(st[1].get("rejected", 0))


def run_case(case: Any, feeder: Any, node: Any, rss: RssSampler, rig: Any) -> dict[str, Any]:
    from hostile_inputs import tainted_plans

    n = feeder.count_paths()
    if not wait_until(lambda: feeder.count_paths() >= n + 2, 15.0):
        return {"case": case.name, "what": case.what, "alive": node.proc.poll() is None, "error": "not planning"}
    stream = case.stream(rig)
    before = _rejected(feeder, stream)
    index, started = feeder.count_paths(), time.monotonic()
    injections = case.send(feeder, rig)
    last_sent = max(t for i in injections for t in i.sent_at)
    newest_bad = max(s for i in injections for s in i.original_ns)

    def named() -> bool:  # a new rejection, the stream at WARN and its last error saying why (errors stay listed)
        st = _status(feeder, stream)
        if st is None or st[0] < 1:
            return False
        return _rejected(feeder, stream) > before and any(text in st[1].get("last_error", "") for text in case.expect)

    diagnosed = wait_until(named, DIAGNOSTIC_TIMEOUT_S)
    status = _status(feeder, stream)

    def next_plan() -> float | None:
        with feeder.lock:
            return next((t for t, t0 in feeder.plan_arrivals if t > last_sent and t0 > newest_bad), None)

    wait_until(lambda: next_plan() is not None or node.proc.poll() is not None, RECOVERY_TIMEOUT_S)
    arrival = next_plan()
    # plans already in flight from before the injection arrive within a tick or two: look one more second
    wait_until(lambda: node.proc.poll() is not None, 1.0)
    plans, arrivals, odom_y = received(feeder, index)
    bad = tainted_plans(plans, arrivals, odom_y, injections, rig)
    counted = _rejected(feeder, stream) - before
    final = _status(feeder, stream)
    alive = node.proc.poll() is None
    result = {
        "case": case.name,
        "what": case.what,
        "stream": stream,
        "bad_messages": sum(len(i.sent_ns) for i in injections),
        "alive": alive,
        "plans_in_case": len(plans),
        "bad_plans": len(bad),
        "bad_plans_detail": [f"t0 {t0 / 1e9:.2f} s: {why}" for t0, why in bad],
        "diagnostic_named": diagnosed,
        "diagnostic_level": None if status is None else status[0],
        "last_error": None if status is None else status[1].get("last_error", ""),
        "rejected_in_case": counted,
        "delivery_pct": None if final is None else final[1].get("delivery_pct"),
        "recovery_s": None if arrival is None else round(arrival - last_sent, 3),
        "peak_rss_mib": rss.peak(started),
    }
    result["ok"] = bool(alive and not bad and diagnosed and arrival is not None)
    return result


def run_fuzz(args: argparse.Namespace, case_names: list[str]) -> dict[str, Any]:
    import rclpy
    from hostile_inputs import Rig, case_named, png_bomb

    cases = [case_named(name) for name in case_names]
    if "png_bomb" in case_names:
        png_bomb()  # ~2 s of zlib, before the clock of any case starts
    cameras, offsets = model_rig(args.backend, args.model)
    rig = Rig(RAW_CAMERA, JPEG_CAMERA, ANCHOR_CAMERA, args.size, cameras, offsets)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="alpamayo_fuzz_"))
    compressed = frozenset({JPEG_CAMERA})
    rclpy.init()
    feeder = start_feeder(args.size, compressed)
    node = start_node(node_command(args.backend, args.model, compressed), log_dir)
    rss = RssSampler(node.proc.pid)
    results: list[dict[str, Any]] = []
    try:
        wait_for_plans(feeder, node, args.startup_timeout)
        baseline = rss.read()
        warm = time.monotonic()
        wait_until(lambda: len(plan_latencies(feeder, warm)) >= 10, 20.0)
        healthy_latency = median(plan_latencies(feeder, warm))
        for case in cases:
            results.append(run_case(case, feeder, node, rss, rig))
            print(f"[fuzz] {case.name}: {'ok' if results[-1].get('ok') else 'FAILED'}", flush=True)
            if node.proc.poll() is not None:
                break
    finally:
        rss.close()
        feeder.close()
        exit_code = node.stop()
        rclpy.try_shutdown()
    return {
        "machine": args.machine,
        "backend": args.backend,
        "model": args.model,
        "size_hw": list(args.size),
        "rss_after_startup_mib": baseline,
        "healthy_plan_latency_s": healthy_latency,
        "node_exit_code": exit_code,
        "node_log": str(node.log_path),
        "cases": results,
    }


def print_results(report: dict[str, Any]) -> None:
    rows = []
    for r in report["cases"]:
        recovery = "-" if r.get("recovery_s") is None else f"{r['recovery_s']:.2f}"
        rss = "-" if r.get("peak_rss_mib") is None else f"{r['peak_rss_mib']:.0f}"
        diagnostic = (r.get("last_error") or r.get("error") or "")[:60] if r.get("diagnostic_named") else "NOT NAMED"
        rows.append((r["case"], "yes" if r["alive"] else "NO", str(r.get("bad_plans", "-")), recovery, rss, diagnostic))
    print_table(("case", "alive", "bad plans", "recovery s", "peak RSS MiB", "diagnostic (last_error)"), rows)
    latency = report.get("healthy_plan_latency_s")
    if latency is not None:
        rss_mib = report["rss_after_startup_mib"]
        print(f"healthy: frames -> plan {latency:.2f} s (median); node RSS after start {rss_mib:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    from hostile_inputs import CASE_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--cases", default=",".join(CASE_NAMES), help="comma-separated case names (default: all)")
    args = parser.parse_args(argv)
    names = chosen(parser, args.cases, CASE_NAMES, "case(s)")
    prepare_environment(args.domain_id)
    try:
        report = run_fuzz(args, names)
    except RuntimeError as exc:
        print(f"fuzz_node: {exc}", file=sys.stderr)
        return 1
    print_results(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0 if all(r.get("ok") for r in report["cases"]) and len(report["cases"]) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
