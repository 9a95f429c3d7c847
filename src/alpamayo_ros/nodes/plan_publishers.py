"""The node's output publishers (lifecycle publishers: silent unless the node is active) and publishing one plan.

Topics (relative names resolve under the node; all remappable): ``~/output/path`` (nav_msgs/Path, base_link at t0),
``~/output/path_odom``, ``~/output/path_samples``, ``~/output/reasoning`` (ChainOfCausation), ``~/output/markers``,
``~/output/overlay``, and per stage ``~/debug/<stage>_time_ms`` plus ``~/debug/stage_latency``. Reliable QoS.
"""

from __future__ import annotations

from typing import Any

from nav_msgs.msg import Path
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher
from sensor_msgs.msg import Image
from std_msgs.msg import Float64
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.msg import ChainOfCausation, StageLatency
from alpamayo_ros.nodes.plan_messages import PlanMessages
from alpamayo_ros.nodes.ros_glue import qos

DEBUG_TIMES = ("processing", "select", "images", "inference", "build")  # ~/debug/<stage>_time_ms


class PlanPublishers:
    """Creates the publishers a configuration asks for; ``publish`` sends one plan's messages and stage times."""

    def __init__(self, node: LifecycleNode, params: NodeParams) -> None:
        self._node = node
        topics: dict[str, tuple[type[Any], str]] = {
            "path": (Path, "~/output/path"),
            "reasoning": (ChainOfCausation, "~/output/reasoning"),
            "markers": (MarkerArray, "~/output/markers"),
            "stage_latency": (StageLatency, "~/debug/stage_latency"),
            **{f"{stage}_ms": (Float64, f"~/debug/{stage}_time_ms") for stage in DEBUG_TIMES},
        }
        if params.output.publish_odom_path:
            topics["path_odom"] = (Path, "~/output/path_odom")
        if params.node.publish_all_samples or params.model.num_samples > 1:
            topics["path_samples"] = (Path, "~/output/path_samples")
        reliable = qos("reliable", 10)
        self._pubs: dict[str, LifecyclePublisher[Any]] = {
            key: node.create_lifecycle_publisher(kind, name, reliable) for key, (kind, name) in topics.items()
        }
        if params.overlay.enabled:
            self._pubs["overlay"] = node.create_lifecycle_publisher(Image, "~/output/overlay", qos("reliable", 2))

    def publish(self, out: PlanMessages, stage_ms: dict[str, float]) -> None:
        pubs = self._pubs
        pubs["path"].publish(out.path)
        for msg in out.reasoning:
            pubs["reasoning"].publish(msg)
        pubs["markers"].publish(out.markers)
        if out.path_odom is not None and "path_odom" in pubs:
            pubs["path_odom"].publish(out.path_odom)
        for sample_path in out.sample_paths if "path_samples" in pubs else ():
            pubs["path_samples"].publish(sample_path)
        if out.overlay is not None and "overlay" in pubs:
            pubs["overlay"].publish(out.overlay)
        for stage in DEBUG_TIMES:
            if f"{stage}_ms" in stage_ms:
                pubs[f"{stage}_ms"].publish(Float64(data=float(stage_ms[f"{stage}_ms"])))
        pubs["stage_latency"].publish(out.latency)

    def destroy(self) -> None:
        for pub in self._pubs.values():
            self._node.destroy_lifecycle_publisher(pub)
        self._pubs.clear()
