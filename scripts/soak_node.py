#!/usr/bin/env python3
"""Soak the real alpamayo_node: minutes of seven cameras + odometry over DDS, its memory and plan rate.

Each configuration starts a fresh node process (``alpamayo-ros node``, sim time, a private ROS_DOMAIN_ID) and feeds
it for ``--minutes``:

- ``raw``: seven sensor_msgs/Image rgb8 streams at 10 Hz;
- ``jpeg``: seven sensor_msgs/CompressedImage JPEG streams at 10 Hz;
- ``hostile``: raw, one camera JPEG (as the fuzz run), and one hostile message a second, cycling through
  ``hostile_inputs.CASES`` (the quick ones); every plan is checked against every bad message.

Reported per configuration: node RSS after warm-up (mean of the 5 s before ``--warmup-s``) and at the end (mean of
the last 10 s), growth %, peak RSS, plans/s and frame sets/s actually sent after warm-up, the median frames -> plan
latency, bad plans (hostile), and whether the node was alive at the end.

    python scripts/soak_node.py [--minutes 10] [--configs raw,jpeg,hostile] [--size 540x960] [--json soak.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import node_harness as harness
from fuzz_node import ANCHOR_CAMERA, JPEG_CAMERA, RAW_CAMERA, add_common_arguments

CONFIGS = ("raw", "jpeg", "hostile")
END_WINDOW_S = 10.0
WARM_WINDOW_S = 5.0


def run_config(config: str, args: argparse.Namespace) -> dict[str, Any]:
    from hostile_inputs import CASES, Rig, png_bomb, tainted_plans
    from rclpy.utilities import ok

    from alpamayo_ros.core.rig import CAMERA_NAMES

    compressed = frozenset(CAMERA_NAMES) if config == "jpeg" else frozenset({JPEG_CAMERA})
    if config == "raw":
        compressed = frozenset()
    cameras, offsets = harness.model_rig(args.backend, args.model)
    rig = Rig(RAW_CAMERA, JPEG_CAMERA, ANCHOR_CAMERA, args.size, cameras, offsets)
    hostile = [case for case in CASES if case.quick] if config == "hostile" else []
    if hostile:
        png_bomb()
    log_dir = (args.log_dir or Path(tempfile.mkdtemp(prefix="alpamayo_soak_"))) / config
    feeder = harness.start_feeder(args.size, compressed)
    node = harness.start_node(harness.node_command(args.backend, args.model, compressed), log_dir)
    rss = harness.RssSampler(node.proc.pid, period_s=0.5)
    injections: list[Any] = []
    try:
        harness.wait_for_plans(feeder, node, args.startup_timeout)
        started = time.monotonic()
        warm_at, end_at = started + args.warmup_s, started + args.minutes * 60.0
        sent_at_warm = plans_at_warm = 0
        k = 0
        while time.monotonic() < end_at and node.proc.poll() is None and ok():
            if hostile:
                injections += hostile[k % len(hostile)].send(feeder, rig)
                k += 1
            if not sent_at_warm and time.monotonic() >= warm_at:
                sent_at_warm, plans_at_warm = len(feeder.published_stamps), feeder.count_paths()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
        ended = time.monotonic()
        plans, arrivals, odom_y = harness.received(feeder)
        measured_s = ended - warm_at
        latency = harness.median(harness.plan_latencies(feeder, warm_at))
        frame_sets = len(feeder.published_stamps) - sent_at_warm
        plans_after_warm = len(plans) - plans_at_warm
        alive = node.proc.poll() is None
    finally:
        rss.close()
        feeder.close()
        exit_code = node.stop()
    warm_rss = rss.mean(warm_at - WARM_WINDOW_S, warm_at)
    end_rss = rss.mean(ended - END_WINDOW_S, ended)
    bad = tainted_plans(plans, arrivals, odom_y, injections, rig)
    return {
        "config": config,
        "compressed_cameras": sorted(compressed),
        "minutes": round((ended - started) / 60.0, 2),
        "alive_at_end": alive,
        "node_exit_code": exit_code,
        "rss_after_warmup_mib": warm_rss,
        "rss_at_end_mib": end_rss,
        "rss_growth_pct": None if not (warm_rss and end_rss) else round(100.0 * (end_rss - warm_rss) / warm_rss, 2),
        "peak_rss_mib": rss.peak(started, ended),
        "plans_per_s": round(plans_after_warm / measured_s, 2),
        "frame_sets_per_s": round(frame_sets / measured_s, 2),
        "median_latency_s": latency,
        "hostile_messages": sum(len(i.sent_ns) for i in injections),
        "bad_plans": len(bad),
        "bad_plans_detail": [f"t0 {t0 / 1e9:.2f} s: {why}" for t0, why in bad],
        "rss_series_mib": [round(v, 1) for _, v in rss.samples[::4]],  # every 2 s
        "node_log": str(node.log_path),
    }


def print_results(report: dict[str, Any]) -> None:
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    rows = [
        (
            r["config"],
            num(r["minutes"], ".1f"),
            num(r["rss_after_warmup_mib"], ".0f"),
            num(r["rss_at_end_mib"], ".0f"),
            num(r["rss_growth_pct"], "+.2f"),
            num(r["peak_rss_mib"], ".0f"),
            num(r["plans_per_s"], ".2f"),
            num(r["frame_sets_per_s"], ".2f"),
            num(r["median_latency_s"], ".2f"),
            f"{r['bad_plans']} of {r['hostile_messages']} msgs" if r["hostile_messages"] else "-",
            "yes" if r["alive_at_end"] else "NO",
        )
        for r in report["configs"]
    ]
    header = ("config", "min", "RSS warm MiB", "RSS end MiB", "growth %", "peak MiB", "plans/s", "frames/s",
              "latency s", "bad plans", "alive")  # fmt: skip
    harness.print_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--minutes", type=float, default=10.0, help="feeding time per configuration")
    parser.add_argument("--warmup-s", type=float, default=30.0, help="seconds before the first RSS figure")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    args = parser.parse_args(argv)
    configs = harness.chosen(parser, args.configs, CONFIGS, "configuration(s)")
    if args.minutes * 60.0 < args.warmup_s + END_WINDOW_S + WARM_WINDOW_S:
        parser.error(f"--minutes {args.minutes:g} leaves no time after the {args.warmup_s:g} s warm-up")
    harness.prepare_environment(args.domain_id)
    import rclpy

    rclpy.init()
    report: dict[str, Any] = {
        "machine": args.machine,
        "backend": args.backend,
        "model": args.model,
        "size_hw": list(args.size),
        "configs": [],
    }
    try:
        for config in configs:
            print(f"[soak] {config}: {args.minutes:g} min", flush=True)
            report["configs"].append(run_config(config, args))
            if args.json is not None:  # keep what is done if a later configuration fails
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=2) + "\n")
    except RuntimeError as exc:
        print(f"soak_node: {exc}", file=sys.stderr)
        return 1
    finally:
        rclpy.try_shutdown()
    print_results(report)
    if args.json is not None:
        print(f"results: {args.json}")
    healthy = all(r["alive_at_end"] and r["bad_plans"] == 0 for r in report["configs"])
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
