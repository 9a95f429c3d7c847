"""Deterministic sample outputs (a ChainOfCausation and a 64-pose Path) built the same way in every process."""

from __future__ import annotations

import math
from typing import Any

T0_SEC, T0_NSEC = 1_700_000_000, 123_456_789
REASONING = (
    "A pedestrian is on the crosswalk ahead. The pedestrian has right of way, so I must yield. "
    "Decelerate to a stop before the crosswalk."
)


def coc_fields() -> dict[str, Any]:
    """Field values of the sample ChainOfCausation as plain data (shared by the rclpy and rosbags builders)."""
    return {
        "stamp": (T0_SEC, T0_NSEC),
        "frame_id": "base_link",
        "reasoning_text": REASONING,
        "steps": [
            (1, "A pedestrian is on the crosswalk ahead."),
            (2, "The pedestrian has right of way, so I must yield."),
            (3, "Decelerate to a stop before the crosswalk."),
        ],
        "reasoning_decision": (2, 1),
        "trajectory_decision": (1, 1),
        "agreement": 1,
        "agreement_detail": "says yield; speed falls from 8.0 to 0.4 m/s",
        "model_name": "alpamayo-tiny (untrained)",
        "model_version": "0123abcd",
        "num_generated_tokens": 37,
        "truncated": False,
        "reasoning_uncertainty": 0.125,
        "sample_index": 0,
        "num_samples": 2,
        "latency": (1.5, 20.25, 310.0, 45.5, 377.75),
    }


def make_coc() -> Any:
    from alpamayo_ros.msg import CausalStep, ChainOfCausation, DrivingDecision, StageLatency

    f = coc_fields()
    msg = ChainOfCausation()
    msg.header.stamp.sec, msg.header.stamp.nanosec = f["stamp"]
    msg.header.frame_id = f["frame_id"]
    msg.reasoning_text = f["reasoning_text"]
    msg.steps = [CausalStep(role=role, text=text) for role, text in f["steps"]]
    msg.reasoning_decision = DrivingDecision(
        longitudinal=f["reasoning_decision"][0], lateral=f["reasoning_decision"][1]
    )
    msg.trajectory_decision = DrivingDecision(
        longitudinal=f["trajectory_decision"][0], lateral=f["trajectory_decision"][1]
    )
    msg.agreement = f["agreement"]
    msg.agreement_detail = f["agreement_detail"]
    msg.model_name = f["model_name"]
    msg.model_version = f["model_version"]
    msg.num_generated_tokens = f["num_generated_tokens"]
    msg.truncated = f["truncated"]
    msg.reasoning_uncertainty = f["reasoning_uncertainty"]
    msg.sample_index = f["sample_index"]
    msg.num_samples = f["num_samples"]
    p, v, r, a, t = f["latency"]
    msg.latency = StageLatency(preprocess_ms=p, vision_ms=v, reasoning_ms=r, action_ms=a, total_ms=t)
    return msg


def make_path() -> Any:
    """64 poses on a gentle left arc, pose i stamped t0 + (i+1) * 0.1 s."""
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    path = Path()
    path.header.stamp.sec, path.header.stamp.nanosec = T0_SEC, T0_NSEC
    path.header.frame_id = "base_link"
    t0_ns = T0_SEC * 1_000_000_000 + T0_NSEC
    for i in range(64):
        stamp_ns = t0_ns + (i + 1) * 100_000_000
        yaw = 0.002 * (i + 1)
        pose = PoseStamped()
        pose.header.frame_id = "base_link"
        pose.header.stamp.sec, pose.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        pose.pose.position.x = 0.8 * (i + 1)
        pose.pose.position.y = 0.01 * (i + 1) ** 2
        pose.pose.orientation.z = math.sin(yaw / 2)
        pose.pose.orientation.w = math.cos(yaw / 2)
        path.poses.append(pose)
    return path
