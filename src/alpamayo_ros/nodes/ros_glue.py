"""Small pieces of rclpy plumbing for the node: QoS, parameter descriptors, diagnostics messages, log forwarding."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from alpamayo_ros.core.diagnostics import Status, Throttle
from alpamayo_ros.core.intake import Notice
from alpamayo_ros.core.params import ParamSpec


def qos(reliability: str, depth: int) -> QoSProfile:
    """KEEP_LAST ``depth`` with "reliable" or "best_effort" reliability."""
    rel = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel)


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of a parameter: its meaning, when it applies and its range."""
    return ParameterDescriptor(
        name=spec.name,
        description=f"{spec.description} (applies: {spec.when})",
        additional_constraints=spec.info.range_text(),
        # rclpy would raise on "tokens:=64.0" or "[1, 0, 1]" for a double array and kill the node at start;
        # types are checked by core.params.type_problem instead, so a bad one is rejected with a reason
        dynamic_typing=True,
    )


def diagnostic_array(statuses: dict[str, Status], node_name: str, hardware_id: str, stamp: Time) -> DiagnosticArray:
    """One DiagnosticStatus per item, named "<node>: <item>", values as strings in the order given."""
    msg = DiagnosticArray(
        status=[
            DiagnosticStatus(
                level=bytes([status.level]),
                name=f"{node_name}: {name}",
                message=status.message,
                hardware_id=hardware_id,
                values=[KeyValue(key=k, value=str(v)) for k, v in status.values.items()],
            )
            for name, status in statuses.items()
        ]
    )
    msg.header.stamp = stamp
    return msg


class RosLogHandler(logging.Handler):
    """Forwards the package's Python logging (model load progress, provenance) to the node's ROS logger."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__(logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        text = f"[{record.name}] {record.getMessage()}"
        if record.levelno >= logging.ERROR:
            self._ros_logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(text)
        else:
            self._ros_logger.info(text)


PACKAGE_LOGGER = "alpamayo_ros"


def forward_package_logs(ros_logger: Any) -> RosLogHandler:
    """Send the package's Python logging (INFO and up unless configured otherwise) to ``ros_logger``; undo with
    ``stop_forwarding``."""
    handler = RosLogHandler(ros_logger)
    package_logger = logging.getLogger(PACKAGE_LOGGER)
    package_logger.addHandler(handler)
    if package_logger.level == logging.NOTSET:
        package_logger.setLevel(logging.INFO)
    return handler


def stop_forwarding(handler: RosLogHandler) -> None:
    logging.getLogger(PACKAGE_LOGGER).removeHandler(handler)


class NoticeLog:
    """Writes intake and planner notices to the node's logger, each key at most once per ``period_sec()`` seconds
    (read at every call, so a live change of the throttle period applies at once)."""

    def __init__(self, ros_logger: Any, period_sec: Callable[[], float]) -> None:
        self._ros_logger = ros_logger
        self._period_sec = period_sec
        self._throttle = Throttle()

    def __call__(self, notices: Iterable[Notice]) -> None:
        for notice in notices:
            if not self._throttle.ready(notice.key, self._period_sec()):
                continue
            if notice.level == "error":  # one call site per severity (rclpy refuses a changing one)
                self._ros_logger.error(notice.text)
            else:
                self._ros_logger.warning(notice.text)
