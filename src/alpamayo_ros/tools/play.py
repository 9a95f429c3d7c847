"""`alpamayo-ros play BAG`: publish a bag's messages with their recorded timing (what `ros2 bag play` does).

Messages go out as the bag's CDR bytes (rclpy publishes pre-serialized bytes: no deserialisation, so 1080p
frames cost only the DDS transfer). Timing: message k is published at wall time start + (t_k - t_first) / rate.
``--clock HZ`` publishes /clock with the bag time, for nodes running with use_sim_time:=true. QoS: reliable /
volatile / keep_last(depth) unless the bag's recorded profile or an override file (ros2 bag's format) says
otherwise; a reliable publisher also serves best-effort subscribers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alpamayo_ros.tools import bagio, rosio
from alpamayo_ros.tools.cli_checks import number_problem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path)
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--start-offset", type=float, default=0.0, help="skip this many seconds of the bag")
    parser.add_argument("--loop", action="store_true", help="play again from the start until interrupted")
    parser.add_argument(
        "--clock",
        type=float,
        nargs="?",
        const=100.0,
        default=0.0,
        metavar="HZ",
        help="publish /clock (bag time) at HZ (default 100 when given)",
    )
    parser.add_argument("--topics", nargs="+", default=None, help="only these topics")
    parser.add_argument("--exclude-topics", nargs="+", default=(), help="not these topics")
    parser.add_argument(
        "--qos-profile-overrides-path",
        type=Path,
        default=None,
        help="YAML {topic: {reliability, durability, history, depth}} (ros2 bag format)",
    )
    parser.add_argument(
        "--reliability",
        choices=rosio.RELIABILITY,
        default=None,
        help="reliability of every publisher (overrides the recorded profiles)",
    )
    parser.add_argument("--depth", type=int, default=100, help="publisher history depth")
    parser.add_argument(
        "--wait-for-subscribers",
        nargs="+",
        default=(),
        metavar="TOPIC",
        help="before playing, wait until each TOPIC has a subscriber",
    )
    parser.add_argument("--wait-timeout", type=float, default=60.0)
    parser.add_argument("--delay", type=float, default=0.0, help="sleep this long before playing (s)")
    parser.add_argument("--quiet", action="store_true")


def _qos_for(topic: str, info: bagio.TopicInfo, args: argparse.Namespace, overrides: dict[str, dict[str, Any]]) -> Any:
    reliability, durability = "reliable", "volatile"
    if info.qos_profiles:  # recorded offered profile (rosbags Qos objects)
        recorded = info.qos_profiles[0]
        if int(getattr(recorded.reliability, "value", recorded.reliability)) == 2:
            reliability = "best_effort"
        if int(getattr(recorded.durability, "value", recorded.durability)) == 1:
            durability = "transient_local"
    if args.reliability:
        reliability = args.reliability
    o = overrides.get(topic, {})
    return rosio.qos_profile(
        str(o.get("reliability", reliability)),
        str(o.get("durability", durability)),
        int(o.get("depth", args.depth)),
        str(o.get("history", "keep_last")),
    )


def _playable(infos: list[bagio.TopicInfo], log: Callable[[str], None]) -> list[bagio.TopicInfo]:
    """The topics whose message types this Python environment has; each other topic is skipped with one line.

    As ``ros2 bag play`` does: e.g. /tf (tf2_msgs) in a venv of PyPI ROS wheels, where tf2_msgs has no wheel.
    """
    playable = []
    for info in infos:
        try:
            rosio.message_class(info.typename)
        except rosio.RosIoError as exc:
            log(f"skipping {info.topic}: {exc}")
            continue
        playable.append(info)
    return playable


def run(args: argparse.Namespace) -> int:
    bag: Path = args.bag
    problem = (
        number_problem(args, 0, "--rate", exclusive=True)
        or number_problem(args, 0, "--start-offset", "--wait-timeout", "--delay")
        or number_problem(args, 1, "--depth")
        or bagio.bag_problem(bag)
    )
    if problem is not None:
        print(f"alpamayo-ros play: {problem}", file=sys.stderr)
        return 2
    if args.qos_profile_overrides_path is not None and not args.qos_profile_overrides_path.is_file():
        print(f"alpamayo-ros play: no such QoS override file: {args.qos_profile_overrides_path}", file=sys.stderr)
        return 2
    infos = [
        t
        for t in bagio.bag_topics(bag)
        if (args.topics is None or t.topic in args.topics) and t.topic not in args.exclude_topics
    ]
    log = rosio.logger("play", quiet=args.quiet)
    infos = _playable(infos, log)
    if not infos:
        print(f"alpamayo-ros play: no topics to play in {bag}", file=sys.stderr)
        return 1
    import yaml

    try:
        overrides = rosio.load_qos_overrides(args.qos_profile_overrides_path)
    except (rosio.RosIoError, ValueError, yaml.YAMLError) as exc:
        print(f"alpamayo-ros play: bad --qos-profile-overrides-path: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    bag_start, bag_end = bagio.bag_time_range(bag)
    start_ns = bag_start + round(args.start_offset * 1e9)

    rclpy = rosio.init_ros()
    stop = rosio.StopFlag()
    stop.install()
    node = rclpy.create_node("alpamayo_bag_player")
    try:
        pubs = {
            t.topic: node.create_publisher(
                rosio.message_class(t.typename), t.topic, _qos_for(t.topic, t, args, overrides)
            )
            for t in infos
        }
        clock_pub = None
        if args.clock > 0:
            from rosgraph_msgs.msg import Clock

            clock_pub = node.create_publisher(Clock, "/clock", rosio.qos_profile("reliable", depth=10))
        deadline = time.monotonic() + args.wait_timeout
        for topic in args.wait_for_subscribers:
            while node.count_subscribers(topic) == 0 and time.monotonic() < deadline and not stop.is_set():
                stop.wait(0.05)
            if node.count_subscribers(topic) == 0:
                log(f"no subscriber on {topic} after {args.wait_timeout:.0f} s; playing anyway")
            else:
                log(f"{topic} has a subscriber")
        if args.delay > 0:
            stop.wait(args.delay)
        counts: Counter[str] = Counter()
        t_wall0 = time.monotonic()
        while not stop.is_set():
            _play_once(bag, pubs, clock_pub, start_ns=start_ns, args=args, stop=stop, counts=counts, log=log)
            if not args.loop:
                break
        wall = time.monotonic() - t_wall0
        total = sum(counts.values())
        log(
            f"published {total} messages on {len(counts)} topics in {wall:.1f} s "
            f"(bag span {(bag_end - start_ns) / 1e9:.1f} s, rate {args.rate})"
            + (f" - stopped by {stop.reason}" if stop.reason else "")
        )
        # Reliable subscribers must get the last samples before the publishers disappear.
        from rclpy.duration import Duration

        for pub in pubs.values():
            pub.wait_for_all_acked(Duration(seconds=2.0))
    except BaseException:
        rosio.finish_ros(rclpy, node, log, exit_code=1)
        raise
    rosio.finish_ros(rclpy, node, log, exit_code=0)
    return 0


def _play_once(
    bag: Path,
    pubs: dict[str, Any],
    clock_pub: Any,
    *,
    start_ns: int,
    args: argparse.Namespace,
    stop: rosio.StopFlag,
    counts: Counter[str],
    log: Callable[[str], None],
) -> None:
    from rosgraph_msgs.msg import Clock

    clock_period = 1.0 / args.clock if args.clock > 0 else 0.0
    t0 = time.monotonic()
    next_clock = t0
    last_log = t0

    def bag_time_at(wall: float) -> int:
        return start_ns + int((wall - t0) * float(args.rate) * 1e9)

    def publish_clock(ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = ns // 10**9, ns % 10**9
        clock_pub.publish(msg)

    for rec in bagio.read_bags([bag], list(pubs), start_ns):
        target = t0 + (rec.log_time_ns - start_ns) / 1e9 / args.rate
        while True:
            now = time.monotonic()
            if clock_pub is not None and now >= next_clock:
                publish_clock(min(bag_time_at(now), rec.log_time_ns))
                next_clock += clock_period
            if now >= target or stop.is_set():
                break
            stop.wait(min(target, next_clock if clock_pub is not None else target) - now)
        if stop.is_set():
            return
        if clock_pub is not None:
            publish_clock(rec.log_time_ns)
        pubs[rec.topic].publish(rec.raw)
        counts[rec.topic] += 1
        if time.monotonic() - last_log > 5.0:
            last_log = time.monotonic()
            log(f"t = {(rec.log_time_ns - start_ns) / 1e9:.1f} s, {sum(counts.values())} messages")
