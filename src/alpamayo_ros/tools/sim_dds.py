"""The closed-loop simulator over real ROS 2: the unchanged ``alpamayo_node`` on sim time, driven tick by tick.

``DdsNode`` owns a small rclpy node ("alpamayo_sim") that publishes a tick's messages (/clock first, odometry, the
seven frames and CameraInfo, the world as a MarkerArray for RViz) and waits, in lockstep, for the node's Path and
ChainOfCausation stamped with that tick's t0. The node under test is started as a child process (``alpamayo-ros
node`` with the rollout's parameter file: the user's parameters, inputs mapped onto the simulator's topics,
``use_sim_time``), or an already running one is used (``attach``). Every wait has a timeout: a node that never comes
up or dies mid-rollout ends the rollout with an error naming the log, and the rollout's bag and partial metrics are
kept by the caller.

Lockstep: the clock does not advance until the node answered the tick (or ``answer_timeout_s`` passed: a missed
plan). The node plans each anchor frame once, so the answer for t0 is exactly one Path. The node's planning timer
runs on the wall clock: ``planning_rate_hz`` is raised for a simulated rollout so that a tick waits at most 20 ms for
it (the node still plans once per frame). DDS delivers each topic on its own, so on a loaded machine the node may
hold the tick's frames before the tick's last odometry sample; in lockstep the node is therefore not allowed to
extrapolate its ego history past the newest sample (``ego.max_extrapolation_sec`` 0): it skips that timer tick and
plans on the next, once the odometry at t0 is in, on the inputs the in-process transport plans on. For the same
reason the node subscribes to the cameras and odometry with reliable QoS in lockstep: a best-effort sample lost on a
loaded machine would leave a tick unanswered (a missed plan) where the in-process transport plans. Every rollout
starts at the same stamps, so before each one the node is deactivated and activated through its lifecycle
services: it forgets the previous rollout's inputs, as the in-process transport starts each rollout on a fresh
intake, and does not take the restarted timeline for time going backwards.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alpamayo_ros.core.params import NODE_NAME, NodeParams, params_file_text
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.rosenv import apply_ros_defaults
from alpamayo_ros.sim.closed_loop import WorldState
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.sim_drivers import NodeAnswer, sim_params
from alpamayo_ros.tools.sim_messages import SimMessage

SIM_PLANNING_RATE_HZ = 50.0
READY_POLL_S = 0.05
TRANSITION_TIMEOUT_S = 30.0  # a lifecycle transition of the node (deactivate and activate only stop/start a timer)


def _input_topics(types: dict[str, Any]) -> list[tuple[str, Any]]:
    """(topic, message class) of everything the simulator sends the node."""
    topics = [(bagio.CLOCK_TOPIC, types["rosgraph_msgs/msg/Clock"]), (bagio.ODOM_TOPIC, types[bagio.ODOMETRY])]
    for cam in CAMERA_NAMES:
        topics += [
            (bagio.image_topic(cam), types[bagio.IMAGE]),
            (bagio.camera_info_topic(cam), types[bagio.CAMERA_INFO]),
        ]
    return topics


class SimTransportError(RuntimeError):
    """The node under test cannot be reached (never came up, died, refused the configuration); says why."""


class DdsNode:
    """The node under test over DDS, and the simulator's side of the conversation."""

    name = "node"

    def __init__(
        self,
        params: NodeParams,
        *,
        log_dir: Path,
        attach: bool = False,
        startup_timeout_s: float = 120.0,
        answer_timeout_s: float = 10.0,
        lockstep: bool = True,
    ) -> None:
        import rclpy
        from lifecycle_msgs.srv import ChangeState
        from nav_msgs.msg import Odometry
        from nav_msgs.msg import Path as PathMsg
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        from alpamayo_ros.msg import ChainOfCausation

        apply_ros_defaults()
        self.params = sim_params(params)
        if lockstep:  # every input delivered, and the tick's odometry waited for (module docstring)
            self.params = dataclasses.replace(
                self.params,
                cameras=tuple(dataclasses.replace(cam, reliability="reliable") for cam in self.params.cameras),
                ego=dataclasses.replace(self.params.ego, max_extrapolation_sec=0.0, odometry_reliability="reliable"),
            )
        self.answer_timeout_s = answer_timeout_s
        self._own_context = not rclpy.ok()
        if self._own_context:
            rclpy.init()
        self._rclpy = rclpy
        self.node = rclpy.create_node("alpamayo_sim")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self._types: dict[str, Any] = {
            bagio.IMAGE: Image,
            bagio.CAMERA_INFO: CameraInfo,
            bagio.ODOMETRY: Odometry,
            "rosgraph_msgs/msg/Clock": Clock,
        }
        # every input publisher exists before the node starts, and a tick is published only once each has matched
        # the node's subscription: reliable delivery covers matched subscribers only
        self._pubs: dict[str, Any] = {
            topic: self.node.create_publisher(kind, topic, reliable) for topic, kind in _input_topics(self._types)
        }
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.node.get_logger().info("tf2_msgs is not installed: /tf is recorded in the bags, not published")
        else:
            self._types[bagio.TF] = TFMessage
            self._pubs[bagio.TF_TOPIC] = self.node.create_publisher(TFMessage, bagio.TF_TOPIC, reliable)
        self._pub_qos = reliable
        self.markers_pub = self.node.create_publisher(MarkerArray, "/alpamayo_sim/world", reliable)
        prefix = f"/{NODE_NAME}/output"
        self.paths: dict[int, Any] = {}
        self.reasoning: dict[int, Any] = {}
        self.node.create_subscription(PathMsg, f"{prefix}/path", lambda m: self._keep(self.paths, m), reliable)
        self.node.create_subscription(
            ChainOfCausation, f"{prefix}/reasoning", lambda m: self._keep(self.reasoning, m), reliable
        )
        self._change_state = self.node.create_client(ChangeState, f"/{NODE_NAME}/change_state")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / "node.log"
        if not attach:
            self.proc = self._start(log_dir)
        self._wait_ready(startup_timeout_s)

    # --- the node under test -----------------------------------------------------------------------------------

    def _start(self, log_dir: Path) -> subprocess.Popen[bytes]:
        log_dir.mkdir(parents=True, exist_ok=True)
        params_path = log_dir / "node_params.yaml"
        extra = {"use_sim_time": True, "planning_rate_hz": SIM_PLANNING_RATE_HZ}
        params_path.write_text(params_file_text(self.params, extra))
        cmd = [
            sys.executable, "-m", "alpamayo_ros.cli", "node", "--ros-args", "--params-file", str(params_path),
            "-r", f"/{NODE_NAME}/input/odometry:={bagio.ODOM_TOPIC}",
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="alpamayo_sim_roslog_"))
        with self.log_path.open("wb") as log:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def _alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise SimTransportError(f"the node exited with code {self.proc.returncode} (log: {self.log_path})")

    def _wait_ready(self, timeout_s: float) -> None:
        """Until every input publisher has matched the node's subscription and the node publishes its path
        (configured and active)."""
        deadline = time.monotonic() + timeout_s
        waiting: list[str] = []
        while time.monotonic() < deadline:
            self._alive()
            waiting = [
                t for t, pub in self._pubs.items() if "camera_info" not in t and pub.get_subscription_count() < 1
            ]
            if not waiting and self.node.count_publishers(f"/{NODE_NAME}/output/path") > 0:
                return
            self.executor.spin_once(timeout_sec=READY_POLL_S)
        self.close()
        missing = f"no subscription to {', '.join(waiting)}" if waiting else "no path publisher"
        raise SimTransportError(f"the node did not come up within {timeout_s:.0f} s ({missing}; log: {self.log_path})")

    def start_rollout(self) -> None:
        """Deactivate and activate the node: it forgets the previous rollout's inputs, as a node started for this
        rollout would hold none, and this rollout's clock (every rollout starts at the same time) is a new start
        rather than time going backwards, which would drop its first messages as strays."""
        from lifecycle_msgs.msg import Transition

        self._transition(Transition.TRANSITION_DEACTIVATE, "deactivate")
        self._transition(Transition.TRANSITION_ACTIVATE, "activate")

    def _transition(self, transition_id: int, label: str) -> None:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        if not self._change_state.wait_for_service(timeout_sec=TRANSITION_TIMEOUT_S):
            raise SimTransportError(f"the node's lifecycle service is not there (log: {self.log_path})")
        future = self._change_state.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        deadline = time.monotonic() + TRANSITION_TIMEOUT_S
        while not future.done() and time.monotonic() < deadline:
            self._alive()
            self.executor.spin_once(timeout_sec=0.01)
        if not future.done():
            raise SimTransportError(
                f"the node did not {label} within {TRANSITION_TIMEOUT_S:g} s (log: {self.log_path})"
            )
        if not future.result().success:
            raise SimTransportError(f"the node refused to {label} (log: {self.log_path})")

    # --- one tick ----------------------------------------------------------------------------------------------

    def _keep(self, into: dict[int, Any], msg: Any) -> None:
        into[int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)] = msg

    def _publish(self, m: SimMessage) -> None:
        from rclpy.serialization import deserialize_message

        pub = self._pubs.get(m.topic)
        if pub is not None:  # /tf only where tf2_msgs is installed (a ROS install; the PyPI wheels have none)
            pub.publish(deserialize_message(m.cdr(), self._types[m.typename]))

    def publish_world(self, world: WorldState, stamp_ns: int) -> Any:
        """The world as RViz markers (odom frame); returns the message for the bag."""
        from alpamayo_ros.tools.sim_markers import world_markers

        msg = world_markers(world, stamp_ns)
        self.markers_pub.publish(msg)
        return msg

    def answer(
        self, messages: Iterable[SimMessage], stamp_ns: int, *, want_plan: bool, wait: bool = True
    ) -> NodeAnswer:
        """Publish the tick's messages; if ``want_plan``, wait for the node's Path (and reasoning) for ``stamp_ns``.

        ``wait=False`` (real-time runs): return at once with the newest plan that has arrived, whatever its t0.
        """
        for m in messages:
            self._publish(m)
        if not want_plan or not wait:
            self._alive()
            self.executor.spin_once(timeout_sec=0.0)
            if not want_plan or not self.paths:
                return NodeAnswer(None, None, "not asked" if not want_plan else "no new plan")
            newest = max(self.paths)
            path, reasoning = self.paths.pop(newest), self.reasoning.pop(newest, None)
            self.paths.clear()
            return NodeAnswer(path, reasoning)
        deadline = time.monotonic() + self.answer_timeout_s
        while time.monotonic() < deadline and stamp_ns not in self.paths:
            self._alive()
            self.executor.spin_once(timeout_sec=0.01)
        path = self.paths.pop(stamp_ns, None)
        if path is None:
            return NodeAnswer(None, None, f"no plan within {self.answer_timeout_s:g} s")
        reasoning_deadline = time.monotonic() + 1.0  # published right after the path, by the same executor callback
        while time.monotonic() < reasoning_deadline and stamp_ns not in self.reasoning:
            self.executor.spin_once(timeout_sec=0.01)
        return NodeAnswer(path, self.reasoning.pop(stamp_ns, None))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=20.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        if self._own_context:
            self._rclpy.try_shutdown()
