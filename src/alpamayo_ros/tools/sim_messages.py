"""What the closed-loop simulator says to the node at one tick, and what it reads back from the node's plan.

The same messages go to the node whichever the transport: ``tick_messages`` builds them (rosbags types, as
``alpamayo-ros synth`` writes bags: odometry on /odom, rgb8 frames and CameraInfo on /cameras/<camera>/...,
/clock); the in-process transport hands them to the planning tick directly, the DDS transport publishes their CDR
bytes; both record the same bytes into the rollout's bag. ``plan_poses`` turns the node's nav_msgs/Path (base_link
at t0) into the (64, 3) x, y, yaw the world's tracker follows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from alpamayo_ros.core.rig import CAMERA_NAMES, FUTURE_STEPS
from alpamayo_ros.core.types import FloatArray
from alpamayo_ros.sim.closed_loop import ClosedLoopWorld, Observation
from alpamayo_ros.tools import bagio

CLOCK = "rosgraph_msgs/msg/Clock"


@dataclass(frozen=True)
class SimMessage:
    """One message of a tick: where it goes, its type, its time (ns) and the message (rosbags type)."""

    topic: str
    typename: str
    stamp_ns: int
    msg: Any

    def cdr(self) -> bytes:
        return bagio.serialize(self.msg, self.typename)


def tick_messages(world: ClosedLoopWorld, obs: Observation) -> Iterator[SimMessage]:
    """/clock at the tick, the odometry since the previous tick (50 Hz) with odom -> base_link on /tf, then the seven
    frames and their CameraInfo.

    Odometry comes first so that a consumer has the pose at t before the frames stamped t.
    """
    yield SimMessage(bagio.CLOCK_TOPIC, CLOCK, obs.stamp_ns, bagio.clock_msg(obs.stamp_ns))
    for o in obs.odometry:
        msg = bagio.odometry_msg(o.stamp_ns, o.x, o.y, o.yaw, v_mps=o.v_mps, yaw_rate=o.yaw_rate)
        yield SimMessage(bagio.ODOM_TOPIC, bagio.ODOMETRY, o.stamp_ns, msg)
        yield SimMessage(bagio.TF_TOPIC, bagio.TF, o.stamp_ns, bagio.tf_msg(o.stamp_ns, o.x, o.y, o.yaw))
    for cam, rgb in zip(world.cameras, obs.images, strict=True):
        info = bagio.camera_info_msg(obs.stamp_ns, cam.name, cam.width, cam.height, cam.k)
        yield SimMessage(bagio.camera_info_topic(cam.name), bagio.CAMERA_INFO, obs.stamp_ns, info)
        yield SimMessage(
            bagio.image_topic(cam.name), bagio.IMAGE, obs.stamp_ns, bagio.image_msg(obs.stamp_ns, cam.name, rgb)
        )


def camera_of_topic(topic: str) -> str | None:
    """The rig camera whose image topic this is (``bagio.image_topic``), or None."""
    for cam in CAMERA_NAMES:
        if topic == bagio.image_topic(cam):
            return cam
    return None


class PlanFormatError(ValueError):
    """A plan the world cannot follow: wrong pose count, non-finite poses; the message says which."""


def plan_poses(path: Any) -> FloatArray:
    """nav_msgs/Path (rclpy or rosbags) of 64 poses in the t0 ego frame -> (64, 3) x, y, yaw (m, m, rad).

    Raises:
        PlanFormatError: not 64 poses, or a non-finite pose (counted as an invalid plan, never followed).
    """
    poses = list(path.poses)
    if len(poses) != FUTURE_STEPS:
        raise PlanFormatError(f"plan has {len(poses)} poses, expected {FUTURE_STEPS}")
    out = np.empty((FUTURE_STEPS, 3))
    for i, stamped in enumerate(poses):
        p, q = stamped.pose.position, stamped.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        out[i] = (p.x, p.y, yaw)
    if not np.all(np.isfinite(out)):
        raise PlanFormatError("plan has non-finite poses")
    return out
