"""Test-side peer of alpamayo_node: publishes /clock, seven cameras and odometry on a simulated timeline, injects
faults on request, and records what the node publishes. Runs in the pytest process (rclpy, own threads).

Timeline: sim time advances in real time in 20 ms steps; odometry every step (50 Hz), cameras every 100 ms
(10 Hz, stamps exactly on the 0.1 s grid, all cameras share the stamp). The ego drives straight along +x at
``speed_mps``. Fault switches are applied by the feeder thread at a step boundary; ``apply`` returns the sim
time at which they took effect, so tests can bound "no plan built on bad data" windows exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry, Path
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float64
from visualization_msgs.msg import MarkerArray

from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.msg import ChainOfCausation

NODE = "/alpamayo_node"
STEP_NS = 20_000_000
CAMERA_EVERY = 5  # steps: 10 Hz


def ns_of(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class Faults:
    stopped: set[str] = field(default_factory=set)
    offset_ns: dict[str, int] = field(default_factory=dict)
    duplicate: set[str] = field(default_factory=set)
    swap: set[str] = field(default_factory=set)
    corrupt_once: set[str] = field(default_factory=set)
    encoding: dict[str, str] = field(default_factory=dict)
    size_hw: dict[str, tuple[int, int]] = field(default_factory=dict)
    odom_nan: bool = False
    odom_stopped: bool = False
    jump_back_ns: int = 0  # applied once
    # camera -> a change made to that camera's next message only (hostile inputs: sizes, stamps, data)
    mangle_once: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    odom_mangled_copy_once: Callable[[Odometry], None] | None = None  # also publish a changed copy, once


class Feeder:
    def __init__(
        self,
        *,
        use_sim_time: bool = True,
        compressed: frozenset[str] = frozenset(),
        size_hw: tuple[int, int] = (64, 96),
        speed_mps: float = 5.0,
        start_ns: int = 1_000 * 1_000_000_000,
    ) -> None:
        self.use_sim_time = use_sim_time
        self.compressed = compressed
        self.size_hw = size_hw
        self.speed_mps = speed_mps
        self.node = rclpy.create_node("alpamayo_test_feeder")
        self.faults = Faults()
        self._pending: list[Callable[[Faults], None]] = []
        self._applied = threading.Condition()
        self._applied_at: dict[int, int] = {}
        self._seq = 0
        self.sim_ns = start_ns
        self.step = 0
        self.lock = threading.Lock()
        self.paths: list[Path] = []
        self.paths_odom: list[Path] = []
        self.reasoning: list[ChainOfCausation] = []
        self.markers: list[MarkerArray] = []
        self.diagnostics: dict[str, Any] = {}
        self.overlays: list[Image] = []
        self.processing_ms: list[float] = []
        self.published_stamps: list[int] = []
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
        self.odom_pub = self.node.create_publisher(Odometry, f"{NODE}/input/odometry", reliable)
        self.cam_pubs = {
            cam: self.node.create_publisher(
                CompressedImage if cam in compressed else Image, f"{NODE}/input/{cam}/image", reliable
            )
            for cam in CAMERA_NAMES
        }
        self.node.create_subscription(Path, f"{NODE}/output/path", self._keep(self.paths), reliable)
        self.node.create_subscription(Path, f"{NODE}/output/path_odom", self._keep(self.paths_odom), reliable)
        self.node.create_subscription(
            ChainOfCausation, f"{NODE}/output/reasoning", self._keep(self.reasoning), reliable
        )
        self.node.create_subscription(MarkerArray, f"{NODE}/output/markers", self._keep(self.markers), reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, reliable)
        self.node.create_subscription(Image, f"{NODE}/output/overlay", self._keep(self.overlays), 5)
        self.node.create_subscription(
            Float64, f"{NODE}/debug/processing_time_ms", lambda m: self.processing_ms.append(m.data), 10
        )
        self.info_pub = self.node.create_publisher(
            CameraInfo, f"{NODE}/input/camera_front_wide_120fov/camera_info", reliable
        )
        self._images: dict[tuple[int, int], bytes] = {}
        self._jpegs: dict[tuple[int, int], bytes] = {}
        self._held: dict[str, Any] = {}
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spin_thread = threading.Thread(target=self._spin, daemon=True)
        self._feed_thread = threading.Thread(target=self._feed, daemon=True)
        self._spin_thread.start()

    # --- recording ---------------------------------------------------------------------------------------------

    def _keep(self, into: list[Any]) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            with self.lock:
                into.append(msg)

        return callback

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                self.diagnostics[status.name] = status

    def status(self, name: str) -> tuple[int, str, dict[str, str]] | None:
        """(level, message, values) of a node diagnostic status, e.g. 'planning', 'camera X', 'odometry'."""
        with self.lock:
            st = self.diagnostics.get(f"alpamayo_node: {name}")
        if st is None:
            return None
        return (
            int.from_bytes(st.level, "little") if isinstance(st.level, bytes) else int(st.level),
            st.message,
            {kv.key: kv.value for kv in st.values},
        )

    def path_stamps(self) -> list[int]:
        with self.lock:
            return [ns_of(p.header.stamp) for p in self.paths]

    def count_paths(self) -> int:
        with self.lock:
            return len(self.paths)

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def _spin(self) -> None:
        while not self._stop.is_set() and rclpy.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def start_feeding(self) -> None:
        self._feed_thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._feed_thread.is_alive():
            self._feed_thread.join(timeout=5)
        self._spin_thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()

    def apply(self, change: Callable[[Faults], None], timeout_s: float = 5.0) -> int:
        """Apply a fault change at the next step; returns the sim time (ns) of the first step that used it."""
        with self._applied:
            self._seq += 1
            seq = self._seq
            self._pending.append(change)
            if not self._feed_thread.is_alive():
                self._drain()
            ok = self._applied.wait_for(lambda: seq in self._applied_at, timeout=timeout_s)
            assert ok, "feeder did not apply the change"
            return self._applied_at[seq]

    def _drain(self) -> None:
        for change in self._pending:
            change(self.faults)
        first = self._seq - len(self._pending) + 1
        for s in range(first, self._seq + 1):
            self._applied_at[s] = self.sim_ns
        self._pending.clear()
        self._applied.notify_all()

    # --- publishing --------------------------------------------------------------------------------------------

    def _image_bytes(self, hw: tuple[int, int]) -> bytes:
        if hw not in self._images:
            img = np.zeros((*hw, 3), np.uint8)
            img[:, :, 1] = 90
            self._images[hw] = img.tobytes()
        return self._images[hw]

    def _jpeg_bytes(self, hw: tuple[int, int]) -> bytes:
        if hw not in self._jpegs:
            ok, buf = cv2.imencode(".jpg", np.full((*hw, 3), 90, np.uint8))
            assert ok
            self._jpegs[hw] = buf.tobytes()
        return self._jpegs[hw]

    def _stamp(self, ns: int) -> Any:
        from builtin_interfaces.msg import Time

        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def _camera_msg(self, cam: str, stamp_ns: int) -> Any:
        f = self.faults
        hw = f.size_hw.get(cam, self.size_hw)
        if cam in self.compressed:
            msg = CompressedImage(format="jpeg")
            msg.data = b"\xff\xd8\xff\xe0 not a jpeg at all" * 4 if cam in f.corrupt_once else self._jpeg_bytes(hw)
            f.corrupt_once.discard(cam)
        else:
            encoding = f.encoding.get(cam, "rgb8")
            msg = Image(height=hw[0], width=hw[1], encoding=encoding, step=hw[1] * 3)
            msg.data = self._image_bytes(hw)
        msg.header.stamp = self._stamp(stamp_ns)
        msg.header.frame_id = cam
        mangle = f.mangle_once.pop(cam, None)
        if mangle is not None:
            mangle(msg)
        return msg

    def _odom_msg(self, stamp_ns: int) -> Odometry:
        msg = Odometry()
        msg.header.stamp = self._stamp(stamp_ns)
        msg.header.frame_id = "odom"
        msg.child_frame_id = "base_link"
        x = self.speed_mps * (stamp_ns / 1e9 - 1000.0)
        msg.pose.pose.position.x = float("nan") if self.faults.odom_nan else x
        msg.pose.pose.orientation.w = 1.0
        msg.twist.twist.linear.x = self.speed_mps
        return msg

    def _now_stamp(self) -> int:
        return self.sim_ns if self.use_sim_time else self.node.get_clock().now().nanoseconds

    def _feed(self) -> None:
        next_wall = time.monotonic()
        while not self._stop.is_set() and rclpy.ok():
            with self._applied:
                if self._pending:
                    self._drain()
            f = self.faults
            if f.jump_back_ns:
                self.sim_ns -= f.jump_back_ns
                f.jump_back_ns = 0
            try:
                self._publish_step()
            except Exception:  # context shut down at the end of the module
                if not rclpy.ok():
                    return
                raise
            self.step += 1
            self.sim_ns += STEP_NS
            next_wall += STEP_NS / 1e9
            delay = next_wall - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_wall = time.monotonic()

    def _publish_step(self) -> None:
        f = self.faults
        stamp_ns = self._now_stamp()
        if self.use_sim_time:
            self.clock_pub.publish(Clock(clock=self._stamp(stamp_ns)))
        if not f.odom_stopped:
            self.odom_pub.publish(self._odom_msg(stamp_ns))
            if f.odom_mangled_copy_once is not None:
                copy = self._odom_msg(stamp_ns)
                f.odom_mangled_copy_once(copy)
                f.odom_mangled_copy_once = None
                self.odom_pub.publish(copy)
        if self.step % CAMERA_EVERY:
            return
        # wall-clock runs: put camera stamps on the 0.1 s grid too
        cam_ns = stamp_ns - stamp_ns % 100_000_000 if not self.use_sim_time else stamp_ns
        for cam in CAMERA_NAMES:
            if cam in f.stopped:
                continue
            msg = self._camera_msg(cam, cam_ns + f.offset_ns.get(cam, 0))
            pub = self.cam_pubs[cam]
            if cam in f.swap:
                held = self._held.pop(cam, None)
                if held is None:
                    self._held[cam] = msg
                    continue
                pub.publish(msg)
                pub.publish(held)
                continue
            pub.publish(msg)
            if cam in f.duplicate:
                pub.publish(msg)
        info = CameraInfo(width=self.size_hw[1], height=self.size_hw[0])
        info.header.stamp = self._stamp(cam_ns)
        info.k = [60.0, 0.0, self.size_hw[1] / 2, 0.0, 60.0, self.size_hw[0] / 2, 0.0, 0.0, 1.0]
        self.info_pub.publish(info)
        self.published_stamps.append(cam_ns)
