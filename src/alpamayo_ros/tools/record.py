"""`alpamayo-ros record --out BAG TOPIC...`: write live topics into a rosbag2 bag (what `ros2 bag record` does).

Subscriptions are raw (the CDR bytes go into the bag untouched). Topics are discovered by polling the graph, so a
topic whose publisher appears later is still recorded; each subscription adapts to its publishers' QoS (best effort
if any publisher is best effort, transient local if all are). Log time = receive time on the node clock
(``--use-sim-time`` follows /clock). Stops cleanly (bag closed and indexed) on SIGINT/SIGTERM, after
``--max-messages``, after ``--duration`` seconds, or after ``--idle-timeout`` seconds without a message.
Prints ``[record] ready`` once every requested topic is subscribed (orchestrators wait on that line).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from alpamayo_ros.tools import bagio, rosio
from alpamayo_ros.tools.cli_checks import number_problem, output_path_problem

IGNORED = ("/rosout", "/parameter_events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topics", nargs="*", help="topics to record (or --all)")
    parser.add_argument("--out", type=Path, required=True, help="bag directory to create")
    parser.add_argument("--all", action="store_true", help="record every discovered topic")
    parser.add_argument("--storage", choices=bagio.STORAGES, default="mcap")
    parser.add_argument("--force", action="store_true", help="replace an existing bag at --out")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many messages (0: no limit)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=0.0,
        help="stop when no message arrived for this long, once one did (0: never)",
    )
    parser.add_argument("--reliability", choices=("auto", *rosio.RELIABILITY), default="auto")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--use-sim-time", action="store_true", help="log times from /clock")
    parser.add_argument(
        "--print-messages",
        action="store_true",
        help="print a line per received message (for orchestrators that watch progress)",
    )
    parser.add_argument("--quiet", action="store_true")


def _subscription_qos(node: Any, topic: str, args: argparse.Namespace) -> Any:
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    infos = node.get_publishers_info_by_topic(topic)
    reliability = "reliable"
    if args.reliability != "auto":
        reliability = args.reliability
    elif any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos):
        reliability = "best_effort"
    transient = bool(infos) and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return rosio.qos_profile(reliability, "transient_local" if transient else "volatile", args.depth)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if not args.topics and not args.all:
        print("alpamayo-ros record: name topics or pass --all", file=sys.stderr)
        return 2
    problem = (
        number_problem(args, 0, "--max-messages", "--duration", "--idle-timeout")
        or number_problem(args, 1, "--depth")
        or output_path_problem("--out", out)
    )
    if problem is not None:
        print(f"alpamayo-ros record: {problem}", file=sys.stderr)
        return 2
    if out.exists():
        if not args.force:
            print(f"alpamayo-ros record: {out} exists (use --force to replace it)", file=sys.stderr)
            return 1
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wanted = {t if t.startswith("/") else "/" + t for t in args.topics}
    log = rosio.logger("record", quiet=args.quiet)

    ros_args = ["--ros-args", "-p", "use_sim_time:=true"] if args.use_sim_time else None
    rclpy = rosio.init_ros(ros_args)
    stop = rosio.StopFlag()
    stop.install()
    node = rclpy.create_node("alpamayo_bag_recorder")
    counts: Counter[str] = Counter()
    subs: dict[str, Any] = {}
    last_msg = [0.0]
    ready_said = False
    try:
        with bagio.BagWriter(out, args.storage) as bag:

            def make_callback(topic: str, typename: str) -> Any:
                def on_message(data: bytes) -> None:
                    bag.write_raw(topic, typename, node.get_clock().now().nanoseconds, data)
                    counts[topic] += 1
                    last_msg[0] = time.monotonic()
                    if args.print_messages:
                        log(f"message {topic} #{counts[topic]}")
                    if args.max_messages and sum(counts.values()) >= args.max_messages:
                        stop.set(f"{args.max_messages} messages")

                return on_message

            t_start = time.monotonic()
            next_discovery = 0.0
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_discovery:
                    next_discovery = now + 0.25
                    for topic, types in node.get_topic_names_and_types():
                        if topic in subs or topic in IGNORED or not (args.all or topic in wanted) or not types:
                            continue
                        typename = types[0]
                        if node.count_publishers(topic) == 0:
                            continue
                        msg_type = rosio.message_class(typename)
                        bag.connection(topic, typename)
                        subs[topic] = node.create_subscription(
                            msg_type,
                            topic,
                            make_callback(topic, typename),
                            _subscription_qos(node, topic, args),
                            raw=True,
                        )
                        log(f"subscribed {topic} ({typename})")
                    if not ready_said and wanted and wanted <= set(subs):
                        ready_said = True
                        log(f"ready: recording {len(subs)} topics into {out}")
                rclpy.spin_once(node, timeout_sec=0.05)
                if args.duration and now - t_start >= args.duration:
                    stop.set(f"duration {args.duration} s")
                if args.idle_timeout and last_msg[0] and now - last_msg[0] >= args.idle_timeout:
                    stop.set(f"idle for {args.idle_timeout} s")
            missing = sorted(wanted - set(subs))
            if missing:
                log(f"never saw a publisher for: {', '.join(missing)}")
        total = sum(counts.values())
        per_topic = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items()))
        log(f"stopped ({stop.reason}); wrote {total} messages to {out} ({per_topic})")
    except BaseException:
        rosio.finish_ros(rclpy, node, log, exit_code=1)
        raise
    rosio.finish_ros(rclpy, node, log, exit_code=0)
    return 0
