"""The node's input subscriptions: seven cameras (raw or compressed, per ``cameras.*``), odometry, and the overlay
camera's CameraInfo.

Every camera frame and odometry message goes straight to ``core.intake.InputIntake`` (buffered, counted, checked;
nothing is decoded on the executor thread) stamped with the node clock at arrival; the intake's notices go to the
node's throttled log. Cameras use the QoS each camera's ``reliability`` names (depth 5), odometry the one
``ego.odometry_reliability`` names (depth 50: 20-100 Hz sources), CameraInfo best effort (depth 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from nav_msgs.msg import Odometry
from rclpy.lifecycle import LifecycleNode
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from alpamayo_ros.core.intake import InputIntake, Notice
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.nodes.ros_glue import qos

ODOMETRY_TOPIC = "~/input/odometry"


class InputSubscriptions:
    """Creates the subscriptions a configuration asks for; ``camera_info`` is the overlay camera's latest
    calibration (None until one arrives or with the overlay off)."""

    def __init__(
        self,
        node: LifecycleNode,
        params: NodeParams,
        intake: InputIntake,
        log: Callable[[Iterable[Notice]], None],
        now_ns: Callable[[], int],
    ) -> None:
        self._node = node
        self.camera_info: CameraInfo | None = None
        self._subs: list[Subscription[Any]] = []
        for cam in params.cameras:
            profile = qos(cam.reliability, 5)
            if cam.message_type == "compressed":
                on_frame = lambda m, c=cam.name: log(intake.add_compressed(c, m, now_ns()))  # noqa: E731
                self._subs.append(node.create_subscription(CompressedImage, cam.topic, on_frame, profile))
            else:
                on_frame = lambda m, c=cam.name: log(intake.add_image(c, m, now_ns()))  # noqa: E731
                self._subs.append(node.create_subscription(Image, cam.topic, on_frame, profile))
        on_odom = lambda m: log(intake.add_odometry(m, now_ns()))  # noqa: E731
        self._subs.append(
            node.create_subscription(Odometry, ODOMETRY_TOPIC, on_odom, qos(params.ego.odometry_reliability, 50))
        )
        if params.overlay.enabled:
            topic = params.overlay.camera_info_topic
            self._subs.append(node.create_subscription(CameraInfo, topic, self._on_camera_info, qos("best_effort", 2)))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def destroy(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs.clear()
