"""rosbag2 input/output with the ``rosbags`` library (rosbag2_py does not exist in the PyPI ROS 2 wheels).

Bags hold CDR bytes identical to what rclpy publishes (the typestore is ROS 2 kilted's plus our messages from
their .msg text, see alpamayo_ros.interfaces), so play/record can pass raw bytes through unchanged.

Topic layout of synthetic bags (what ``alpamayo-ros synth`` writes and the demo remaps the node onto):

| topic | type | rate | frame |
|---|---|---|---|
| /cameras/<camera>/image_raw | sensor_msgs/Image rgb8 | 10 Hz | <camera>_optical |
| /cameras/<camera>/image_raw/compressed | sensor_msgs/CompressedImage jpeg (``--compressed``) | 10 Hz | same |
| /cameras/<camera>/camera_info | sensor_msgs/CameraInfo (pinhole, no distortion) | 10 Hz | same |
| /odom | nav_msgs/Odometry (pose: odom <- base_link; twist: base_link) | 50 Hz | odom / base_link |
| /tf | tf2_msgs/TFMessage: odom -> base_link = the odometry pose (RViz shows base_link data in odom) | 50 Hz | odom |
| /ground_truth/path | nav_msgs/Path: ego future, 64 poses, pose i at t0 + (i+1) * 0.1 s | 10 Hz | base_link at t0 |
| /ground_truth/reasoning | alpamayo_ros/ChainOfCausation: the scenario planner's reference label | 10 Hz | base_link |

Ground-truth messages carry the camera tick t0 in header.stamp and are written at bag time t0.

Bags are written as rosbag2 on kilted writes them (``ros_distro: kilted``, mcap channels with ``topic_type_hash``;
see ``tools.kilted_writer``). ``bag_problem`` says in one line why a path cannot be read as a bag, for the CLIs.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.interfaces import typestore

if TYPE_CHECKING:
    from rosbags.rosbag2 import Writer

    from alpamayo_ros.sim.labels import ReferenceLabel

STORAGES: tuple[str, ...] = ("mcap", "sqlite3")
ODOM_TOPIC = "/odom"
GT_PATH_TOPIC = "/ground_truth/path"
GT_REASONING_TOPIC = "/ground_truth/reasoning"
CLOCK_TOPIC = "/clock"
TF_TOPIC = "/tf"
ODOM_FRAME = "odom"
EGO_FRAME = "base_link"

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
ODOMETRY = "nav_msgs/msg/Odometry"
PATH = "nav_msgs/msg/Path"
COC = "alpamayo_ros/msg/ChainOfCausation"
TF = "tf2_msgs/msg/TFMessage"


class BagError(RuntimeError):
    """A bag that cannot be read or written as asked; the message names the bag and the problem."""


def image_topic(camera: str, compressed: bool = False) -> str:
    return f"/cameras/{camera}/image_raw" + ("/compressed" if compressed else "")


def camera_info_topic(camera: str) -> str:
    return f"/cameras/{camera}/camera_info"


def optical_frame(camera: str) -> str:
    return f"{camera}_optical"


# ------------------------------------------------------------------------------------------ message builders
def _t() -> dict[str, Any]:
    return typestore().types  # type: ignore[no-any-return]


def stamp(ns: int) -> Any:
    return _t()["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)


def stamp_ns(time_msg: Any) -> int:
    """builtin_interfaces/Time (rosbags or rclpy) -> integer nanoseconds."""
    return int(time_msg.sec) * 10**9 + int(time_msg.nanosec)


def header(ns: int, frame_id: str) -> Any:
    return _t()["std_msgs/msg/Header"](stamp=stamp(ns), frame_id=frame_id)


def image_msg(ns: int, camera: str, rgb: UInt8Array) -> Any:
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = arr.shape[:2]
    return _t()[IMAGE](
        header=header(ns, optical_frame(camera)),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=arr.reshape(-1),
    )


def compressed_msg(ns: int, camera: str, rgb: UInt8Array, quality: int = 90) -> Any:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BagError(f"JPEG encoding failed for {camera}")
    return _t()[COMPRESSED](
        header=header(ns, optical_frame(camera)), format="rgb8; jpeg compressed bgr8", data=buf.reshape(-1)
    )


def camera_info_msg(ns: int, camera: str, width: int, height: int, k: FloatArray) -> Any:
    t = _t()
    p = np.zeros(12)
    p[[0, 1, 2, 4, 5, 6, 10]] = [k[0, 0], k[0, 1], k[0, 2], k[1, 1], k[1, 2], 0.0, 1.0]
    return t[CAMERA_INFO](
        header=header(ns, optical_frame(camera)),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.asarray(k, dtype=np.float64).reshape(9),
        r=np.eye(3).reshape(9),
        p=p,
        binning_x=0,
        binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def _quat_yaw(yaw: float) -> Any:
    return _t()["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))


def _pose(x: float, y: float, yaw: float) -> Any:
    t = _t()
    return t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](x=x, y=y, z=0.0), orientation=_quat_yaw(yaw)
    )


def odometry_msg(ns: int, x: float, y: float, yaw: float, *, v_mps: float, yaw_rate: float) -> Any:
    """Pose of base_link in odom; twist in base_link (REP 105). Covariances: small diagonal (synthetic, exact)."""
    t = _t()
    cov = np.diag([1e-4, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5]).reshape(36)
    vec = t["geometry_msgs/msg/Vector3"]
    return t[ODOMETRY](
        header=header(ns, ODOM_FRAME),
        child_frame_id=EGO_FRAME,
        pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=_pose(x, y, yaw), covariance=cov),
        twist=t["geometry_msgs/msg/TwistWithCovariance"](
            twist=t["geometry_msgs/msg/Twist"](
                linear=vec(x=v_mps, y=0.0, z=0.0), angular=vec(x=0.0, y=0.0, z=yaw_rate)
            ),
            covariance=cov,
        ),
    )


def tf_msg(ns: int, x: float, y: float, yaw: float) -> Any:
    """odom -> base_link at ``ns`` (the odometry pose, planar) as a one-transform tf2_msgs/TFMessage for /tf."""
    t = _t()
    transform = t["geometry_msgs/msg/Transform"](
        translation=t["geometry_msgs/msg/Vector3"](x=x, y=y, z=0.0), rotation=_quat_yaw(yaw)
    )
    stamped = t["geometry_msgs/msg/TransformStamped"](
        header=header(ns, ODOM_FRAME), child_frame_id=EGO_FRAME, transform=transform
    )
    return t[TF](transforms=[stamped])


def path_msg(t0_ns: int, future: FloatArray, step_sec: float = 0.1, frame_id: str = EGO_FRAME) -> Any:
    """(N, 3) x, y, yaw in the t0 ego frame -> nav_msgs/Path; pose i stamped t0 + (i+1) * step_sec."""
    t = _t()
    poses = [
        t["geometry_msgs/msg/PoseStamped"](
            header=header(t0_ns + round((i + 1) * step_sec * 1e9), frame_id),
            pose=_pose(float(p[0]), float(p[1]), float(p[2])),
        )
        for i, p in enumerate(np.asarray(future, dtype=np.float64))
    ]
    return t[PATH](header=header(t0_ns, frame_id), poses=poses)


def reference_coc_msg(t0_ns: int, label: ReferenceLabel) -> Any:
    """The scenario's reference label as a ChainOfCausation (stated decision = the label; no model, no latency)."""
    t = _t()
    decision = t["alpamayo_ros/msg/DrivingDecision"](longitudinal=int(label.longitudinal), lateral=int(label.lateral))
    return t[COC](
        header=header(t0_ns, EGO_FRAME),
        reasoning_text=label.text,
        steps=[t["alpamayo_ros/msg/CausalStep"](role=int(role), text=text) for role, text in label.steps],
        reasoning_decision=decision,
        trajectory_decision=decision,
        agreement=1,
        agreement_detail="reference label of the scenario planner",
        model_name="scenario_reference",
        model_version="1",
        num_generated_tokens=0,
        truncated=False,
        reasoning_uncertainty=math.nan,
        sample_index=0,
        num_samples=1,
        latency=t["alpamayo_ros/msg/StageLatency"](
            preprocess_ms=0.0, vision_ms=0.0, reasoning_ms=0.0, action_ms=0.0, total_ms=0.0
        ),
    )


def clock_msg(ns: int) -> Any:
    return _t()["rosgraph_msgs/msg/Clock"](clock=stamp(ns))


# ------------------------------------------------------------------------------------------------ writing
class BagWriter:
    """A rosbag2 bag being written: one connection per topic, created on first use; CDR via our typestore."""

    def __init__(self, path: Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin

        from alpamayo_ros.tools.kilted_writer import KiltedWriter

        if storage not in STORAGES:
            raise BagError(f"storage {storage!r} is not one of {', '.join(STORAGES)}")
        if path.exists():
            raise BagError(f"bag {path} already exists (rosbag2 never overwrites; remove it or pick another --out)")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.path = path
        self._writer: Writer = KiltedWriter(path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self.count = 0

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._writer.close()

    def connection(self, topic: str, typename: str) -> Any:
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, typename, typestore=typestore())
            self._connections[topic] = conn
        elif conn.msgtype != typename:
            raise BagError(f"topic {topic} already holds {conn.msgtype}, cannot also write {typename}")
        return conn

    def write_raw(self, topic: str, typename: str, ns: int, data: bytes | memoryview) -> None:
        self._writer.write(self.connection(topic, typename), ns, data)
        self.count += 1

    def write(self, topic: str, typename: str, ns: int, msg: Any) -> None:
        self.write_raw(topic, typename, ns, serialize(msg, typename))


def serialize(msg: Any, typename: str) -> bytes:
    return bytes(typestore().serialize_cdr(msg, typename))


def deserialize(raw: bytes | memoryview, typename: str) -> Any:
    return typestore().deserialize_cdr(raw, typename)


# ------------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class BagRecord:
    topic: str
    typename: str
    log_time_ns: int  # the bag's receive/record time
    raw: bytes


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    typename: str
    count: int
    qos_profiles: tuple[Any, ...]


def bag_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a rosbag2 bag, in one line that names it; None when it can.

    Tells apart what a user can fix differently: a path that does not exist, an empty directory, a plain file, a
    directory without metadata.yaml, a corrupt metadata.yaml, and storage files that are missing or truncated.
    A bare ``.mcap`` / ``.db3`` file is a bag (rosbags reads it without metadata.yaml).
    """
    from rosbags.rosbag2 import Reader, ReaderError

    if not path.exists():
        return f"{path} does not exist"
    if path.is_dir():
        if not any(path.iterdir()):
            return f"{path} is an empty directory, not a rosbag2 bag"
        if not (path / "metadata.yaml").is_file():
            return f"{path} is a directory without metadata.yaml, not a rosbag2 bag"
    elif path.suffix not in (".mcap", ".db3"):
        return f"{path} is a file, not a rosbag2 bag (a directory with metadata.yaml, or a .mcap / .db3 file)"
    try:
        with Reader(path):
            pass
    except (ReaderError, OSError, ValueError, KeyError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{path} is not a readable rosbag2 bag: {reason}"
    return None


@contextmanager
def open_bag(path: Path) -> Iterator[Any]:
    """An open rosbags ``Reader``; a path that is not a readable bag raises BagError with ``bag_problem``'s line.

    The bag is opened once: the diagnosis runs only after opening failed (a player's clock starts right after).
    """
    from rosbags.rosbag2 import Reader, ReaderError

    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, OSError, ValueError, KeyError) as exc:
        raise BagError(bag_problem(path) or f"{path}: {exc}") from None
    try:
        yield reader
    finally:
        reader.close()


def bag_topics(path: Path) -> list[TopicInfo]:
    with open_bag(path) as reader:
        return [
            TopicInfo(c.topic, c.msgtype, c.msgcount, tuple(getattr(c.ext, "offered_qos_profiles", ()) or ()))
            for c in reader.connections
        ]


def bag_time_range(path: Path) -> tuple[int, int]:
    with open_bag(path) as reader:
        return int(reader.start_time), int(reader.end_time)


def _one_bag(path: Path, topics: Sequence[str] | None, start_ns: int | None) -> Iterator[BagRecord]:
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:
            return
        for conn, ns, raw in reader.messages(connections=conns, start=start_ns):
            yield BagRecord(conn.topic, conn.msgtype, int(ns), bytes(raw))


def read_bags(
    paths: Iterable[Path], topics: Sequence[str] | None = None, start_ns: int | None = None
) -> Iterator[BagRecord]:
    """Messages of several bags merged by log time (stable: ties keep bag order)."""
    streams = [_one_bag(Path(p), topics, start_ns) for p in paths]
    yield from heapq.merge(*streams, key=lambda r: r.log_time_ns)
