"""Small rclpy helpers shared by play and record (imported only by those tools: rclpy is loaded here).

- message classes from rosbag2 type names ('sensor_msgs/msg/Image' -> sensor_msgs.msg.Image) via importlib,
  the replacement for the missing `ros2` CLI's type lookup;
- QoS profiles from the names ros2 bag's override files use (reliability / durability / history / depth);
- a stop flag driven by SIGINT/SIGTERM, so a tool can close its bag cleanly instead of dying mid-write.
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

RELIABILITY = ("reliable", "best_effort")
DURABILITY = ("volatile", "transient_local")


class RosIoError(RuntimeError):
    """A type or QoS setting the tool cannot use; the message names it."""


def message_class(typename: str) -> Any:
    """'pkg/msg/Name' -> the rclpy message class (ImportError explains which package is missing)."""
    parts = typename.split("/")
    if len(parts) != 3:
        raise RosIoError(f"type name {typename!r} is not of the form pkg/msg/Name")
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
    except ImportError as exc:
        raise RosIoError(f"message package {pkg!r} is not installed (needed for {typename})") from exc
    try:
        return getattr(module, name)
    except AttributeError:
        raise RosIoError(f"{pkg}.{kind} has no message {name!r}") from None


def qos_profile(
    reliability: str = "reliable", durability: str = "volatile", depth: int = 100, history: str = "keep_last"
) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if reliability not in RELIABILITY:
        raise RosIoError(f"reliability {reliability!r} is not one of {', '.join(RELIABILITY)}")
    if durability not in DURABILITY:
        raise RosIoError(f"durability {durability!r} is not one of {', '.join(DURABILITY)}")
    if history not in ("keep_last", "keep_all"):
        raise RosIoError(f"history {history!r} is not keep_last or keep_all")
    return QoSProfile(
        depth=max(1, int(depth)),
        history=HistoryPolicy.KEEP_LAST if history == "keep_last" else HistoryPolicy.KEEP_ALL,
        reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE if durability == "volatile" else DurabilityPolicy.TRANSIENT_LOCAL,
    )


def load_qos_overrides(path: Path | None) -> dict[str, dict[str, Any]]:
    """ros2 bag's --qos-profile-overrides-path YAML: {topic: {reliability, durability, history, depth}}."""
    if path is None:
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RosIoError(f"{path}: expected a mapping topic -> {{reliability, durability, history, depth}}")
    return {str(k): dict(v) for k, v in data.items()}


class StopFlag:
    """Set by SIGINT/SIGTERM (rclpy's own handlers are disabled by init_ros); wait() sleeps interruptibly."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.set(signal.Signals(signum).name)

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(max(0.0, seconds))


def logger(tool: str, *, quiet: bool = False) -> Callable[[str], None]:
    """Progress lines on stdout, prefixed with the tool's name (orchestrators read them)."""

    def log(message: str) -> None:
        if not quiet:
            print(f"[{tool}] {message}", flush=True)

    return log


def init_ros(args: list[str] | None = None) -> Any:
    """apply_ros_defaults + rclpy.init without rclpy's signal handlers (the tool handles signals itself)."""
    from alpamayo_ros.rosenv import apply_ros_defaults

    apply_ros_defaults()
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    return rclpy


def finish_ros(rclpy: Any, node: Any, log: Callable[[str], None], exit_code: int, timeout_sec: float = 10.0) -> None:
    """Destroy the node and shut rclpy down, with a watchdog on the teardown.

    Called once the tool's output (a closed bag, a finished playback) is complete. Rarely, under load, the DDS
    teardown or interpreter exit hangs after that (seen once in CI-like runs: the recorder had written and closed its
    bag, then never exited). A daemon thread ends the process with the tool's own exit code if teardown and exit
    have not finished within ``timeout_sec``, saying so, so callers waiting on the tool never hang. The watchdog
    also covers interpreter exit, so this is only for processes that end right after (the play/record commands).
    That thread needs the GIL; a teardown blocked in C while holding it (seen again in CI: no watchdog line after
    30 s) is ended at twice the timeout by faulthandler's own C thread instead, with exit code 1 and every Python
    thread's stack on stderr, so the hang is never endless and shows where it was.
    """

    def _force_exit() -> None:
        log(f"ROS teardown still running after {timeout_sec:g} s; exiting with code {exit_code} (output is complete)")
        os._exit(exit_code)

    watchdog = threading.Timer(timeout_sec, _force_exit)
    watchdog.daemon = True
    watchdog.start()
    faulthandler.dump_traceback_later(2.0 * timeout_sec, exit=True)
    node.destroy_node()
    rclpy.try_shutdown()
