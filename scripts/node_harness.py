"""What fuzz_node.py and soak_node.py share: the real alpamayo_node in a child process on a private DDS domain, fed
seven cameras + odometry by this process, its plans timed, its memory sampled.

The feeding side is the pipeline tests' own peer (``test/nodes/node_feeder.Feeder``: /clock, seven cameras on the
0.1 s grid, 50 Hz odometry of an ego driving straight along +x), extended here with what a harness needs and a test
does not: every hostile message is recorded (the stamp it replaced, the stamp it carried, when it left), and every
plan's arrival time is kept, so "no plan from a bad frame" and "time to the next plan" are measured, not assumed.

Domain: ``prepare_environment`` must run before rclpy is imported anywhere (the domain is read at rclpy.init); it
picks a domain away from the pytest range (100-199) unless one is given, and keeps discovery on this host.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The feeder is the pipeline tests' peer; the harness runs from a checkout, where test/ sits beside scripts/.
sys.path.insert(0, str(REPO / "test" / "nodes"))

MIB = 1024 * 1024
SEC = 1_000_000_000


def prepare_environment(domain_id: int | None) -> int:
    """Private DDS domain on loopback, logs in a temporary folder, the package's Fast DDS profile; returns the domain.

    Must run before rclpy is imported: the domain and the profile are read when rclpy initialises.
    """
    from alpamayo_ros.rosenv import apply_ros_defaults

    domain = domain_id if domain_id is not None else 30 + os.getpid() % 60
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="alpamayo_harness_roslog_"))
    os.environ["PYTHONUNBUFFERED"] = "1"
    apply_ros_defaults()
    return domain


def model_rig(backend: str, model: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(cameras, frame offsets in s, <= 0) the node's model reads: which frames can end up in which plan.

    A bad frame stamped s can only reach a plan whose t0 is s - offset (within the sync tolerance) for one of these
    offsets, and only if its camera is one the model consumes.
    """
    from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC

    if backend != "torch":
        return tuple(ALPAMAYO_R1_CAMERAS), tuple(ALPAMAYO_R1_FRAME_OFFSETS_SEC)
    import json

    from alpamayo_ros.runtime.torch_backend import resolve_model_path, rig_from_config

    path = Path(resolve_model_path(model))
    raw = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    return rig_from_config(raw)


class RssSampler:
    """Resident memory of one process (MiB, from /proc/PID/status), sampled every ``period_s`` on a thread."""

    def __init__(self, pid: int, period_s: float = 0.05) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (monotonic s, MiB)
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / MIB
        except OSError:
            return None
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.read()
            if rss is None:
                return
            self.samples.append((time.monotonic(), rss))
            self._stop.wait(self._period)

    def peak(self, since: float, until: float | None = None) -> float | None:
        end = time.monotonic() if until is None else until
        window = [rss for t, rss in list(self.samples) if since <= t <= end]
        return max(window) if window else None

    def mean(self, since: float, until: float) -> float | None:
        window = [rss for t, rss in list(self.samples) if since <= t <= until]
        return sum(window) / len(window) if window else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def node_command(backend: str, model: str, compressed: frozenset[str], extra: tuple[str, ...] = ()) -> list[str]:
    """`alpamayo-ros node` in this interpreter (its pid is the node's: RSS is the node's own), on sim time."""
    params = [
        "use_sim_time:=true",
        f"model.backend:={backend}",
        f"model.model_path:={model}",
        "diagnostics.period_sec:=0.25",
        "log_throttle_sec:=1.0",
        *(f"cameras.{cam}.message_type:=compressed" for cam in sorted(compressed)),
        *extra,
    ]
    cmd = [sys.executable, "-m", "alpamayo_ros.cli", "node", "--ros-args"]
    for p in params:
        cmd += ["-p", p]
    return cmd


@dataclass
class Injection:
    """Hostile messages of one stream as they left: the stamp each replaced, the one it carried, when (monotonic s)."""

    stream: str  # a camera name or "odometry"
    original_ns: list[int] = field(default_factory=list)
    sent_ns: list[int] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)


def start_feeder(size_hw: tuple[int, int], compressed: frozenset[str]) -> Any:
    """A HarnessFeeder (rclpy must be initialised): the tests' Feeder plus injection records and plan arrival times."""
    from nav_msgs.msg import Odometry
    from nav_msgs.msg import Path as PathMsg
    from node_feeder import CAMERA_EVERY, NODE, Feeder, ns_of
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    class HarnessFeeder(Feeder):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(compressed=compressed, size_hw=size_hw)
            self.plan_arrivals: list[tuple[float, int]] = []  # (monotonic s, t0 ns)
            self.odom_paths: dict[int, float] = {}  # t0 ns -> lateral position (m) of the odom path's first pose
            self.frames_sent_at: dict[int, float] = {}  # camera stamp ns -> monotonic s its frames were published
            self._odom_hook: Callable[[Any], None] | None = None
            self._duplicate_hook: Callable[[Any], None] | None = None
            reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
            self.node.create_subscription(PathMsg, f"{NODE}/output/path", self._arrived, reliable)
            self.node.create_subscription(PathMsg, f"{NODE}/output/path_odom", self._odom_path, reliable)

        def _arrived(self, msg: Any) -> None:
            with self.lock:
                self.plan_arrivals.append((time.monotonic(), ns_of(msg.header.stamp)))

        def _odom_path(self, msg: Any) -> None:
            if msg.poses:
                with self.lock:
                    self.odom_paths[ns_of(msg.header.stamp)] = float(msg.poses[0].pose.position.y)

        def _odom_msg(self, stamp_ns: int) -> Odometry:
            msg = super()._odom_msg(stamp_ns)
            hook, self._odom_hook = self._odom_hook, None
            if hook is not None:
                hook(msg)
            return msg

        def _publish_step(self) -> None:
            super()._publish_step()
            camera_step = self.step % CAMERA_EVERY == 0
            if camera_step and self.published_stamps:
                with self.lock:
                    self.frames_sent_at.setdefault(self.published_stamps[-1], time.monotonic())
            if camera_step and self._duplicate_hook is not None:  # a second odometry message at a t0 stamp
                copy = super()._odom_msg(self._now_stamp())
                hook, self._duplicate_hook = self._duplicate_hook, None
                hook(copy)
                self.odom_pub.publish(copy)

        def _recording(
            self, stream: str, mangle: Callable[[Any], None], count: int, rearm: Callable[[Any], None]
        ) -> Any:
            injection = Injection(stream)

            def hook(msg: Any) -> None:
                original = ns_of(msg.header.stamp)
                mangle(msg)
                injection.original_ns.append(original)
                injection.sent_ns.append(ns_of(msg.header.stamp))
                injection.sent_at.append(time.monotonic())
                if len(injection.sent_ns) < count:
                    rearm(hook)

            return injection, hook

        def _wait(self, injection: Injection, count: int) -> Injection:
            deadline = time.monotonic() + 10.0 + count * 0.2
            while len(injection.sent_ns) < count and time.monotonic() < deadline:
                time.sleep(0.01)
            if len(injection.sent_ns) < count:
                raise RuntimeError(f"the feeder sent {len(injection.sent_ns)} of {count} {injection.stream} messages")
            return injection

        def inject_frames(self, camera: str, mangle: Callable[[Any], None], count: int = 1) -> Injection:
            """The next ``count`` frames of ``camera`` changed by ``mangle``; returns once all are sent."""

            def rearm(hook: Callable[[Any], None]) -> None:
                self.faults.mangle_once[camera] = hook

            injection, hook = self._recording(camera, mangle, count, rearm)
            self.apply(lambda f: f.mangle_once.update({camera: hook}))
            return self._wait(injection, count)

        def inject_odometry(self, mangle: Callable[[Any], None], count: int = 1) -> Injection:
            """The next ``count`` odometry messages changed by ``mangle``."""

            def rearm(hook: Callable[[Any], None]) -> None:
                self._odom_hook = hook

            injection, hook = self._recording("odometry", mangle, count, rearm)
            self.apply(lambda _f: rearm(hook))
            return self._wait(injection, count)

        def inject_odometry_duplicate(self, mangle: Callable[[Any], None]) -> Injection:
            """A second odometry message with the stamp of a t0 (camera) step, changed by ``mangle``."""

            def rearm(hook: Callable[[Any], None]) -> None:
                self._duplicate_hook = hook

            injection, hook = self._recording("odometry", mangle, 1, rearm)
            self.apply(lambda _f: rearm(hook))
            return self._wait(injection, 1)

    return HarnessFeeder()


def received(feeder: Any, index: int = 0) -> tuple[list[Any], dict[int, float], dict[int, float]]:
    """Plans received from ``index`` on, t0 -> arrival time (monotonic s), t0 -> odom plan's first lateral y (m)."""
    with feeder.lock:
        arrivals: dict[int, float] = {}
        for t, t0 in feeder.plan_arrivals:
            arrivals.setdefault(t0, t)
        return list(feeder.paths[index:]), arrivals, dict(feeder.odom_paths)


def plan_latencies(feeder: Any, since: float = 0.0) -> list[float]:
    """Seconds from a t0's frames leaving this process to its plan arriving back (plans arriving after ``since``)."""
    with feeder.lock:
        sent = dict(feeder.frames_sent_at)
        return [t - sent[t0] for t, t0 in feeder.plan_arrivals if t >= since and t0 in sent]


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def start_node(cmd: list[str], log_dir: Path) -> Any:
    """The node as a logged child process (tools.demo.Child: output copied to log_dir/node.log)."""
    from alpamayo_ros.tools.demo import Child

    log_dir.mkdir(parents=True, exist_ok=True)
    return Child("node", cmd, dict(os.environ), log_dir)


def wait_for_plans(feeder: Any, node: Any, timeout_s: float) -> None:
    """Block until the node is subscribed and has published two plans; RuntimeError with the node's log otherwise."""
    from node_feeder import NODE

    def matched() -> bool:
        return bool(feeder.node.count_subscribers(f"{NODE}/input/odometry") > 0)

    if not wait_until(matched, timeout_s):
        raise RuntimeError(f"the node never subscribed (log {node.log_path}):\n{node.tail()}")
    feeder.start_feeding()
    if not wait_until(lambda: feeder.count_paths() >= 2 or node.proc.poll() is not None, timeout_s):
        raise RuntimeError(f"no plans from the node in {timeout_s:.0f} s (log {node.log_path}):\n{node.tail()}")
    if node.proc.poll() is not None:
        raise RuntimeError(f"the node exited with {node.proc.returncode} (log {node.log_path}):\n{node.tail()}")


def chosen(parser: argparse.ArgumentParser, text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    """A comma-separated selection out of ``allowed``; anything else is a usage error naming the choices."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        parser.error(f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}")
    return names


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
