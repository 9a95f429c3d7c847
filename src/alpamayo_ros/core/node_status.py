"""Every diagnostic status of the node at one moment: model, planning, odometry and one per camera.

Derived from the intake's and the planner's counters with ``core.diagnostics``; the node only wraps each ``Status``
into a ``diagnostic_msgs/DiagnosticStatus`` and publishes. Times are ROS nanoseconds (node clock).
"""

from __future__ import annotations

from alpamayo_ros.core.diagnostics import (
    Lifecycle,
    ModelState,
    PlanningStats,
    Status,
    camera_status,
    model_status,
    odometry_status,
    planning_status,
)
from alpamayo_ros.core.intake import InputIntake
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.types import ModelInfo


def node_statuses(
    params: NodeParams,
    *,
    model_state: ModelState,
    lifecycle: Lifecycle,
    model_error: str,
    info: ModelInfo | None,
    intake: InputIntake,
    plan: PlanningStats,
    now_ns: int,
) -> dict[str, Status]:
    """Item name -> status, in publishing order ("model", "planning", "odometry", "camera <name>" x7)."""
    max_age = params.planning.max_sample_age_sec
    plan.flushes = intake.flushes
    odometry = intake.odometry_stats
    statuses = {
        "model": model_status(
            model_state,
            lifecycle,
            model_error,
            backend=params.model.backend,
            model_path=params.model.model_path,
            info=info,
        ),
        "planning": planning_status(plan, lifecycle, params.diagnostics.uncertainty_warn),
        "odometry": odometry_status(odometry, now_ns, max_age, frame_id=intake.odometry.frame_id),
    }
    required = set(info.cameras) if info is not None else set()
    for cam in CAMERA_NAMES:
        statuses[f"camera {cam}"] = camera_status(
            intake.camera_stats[cam],
            now_ns,
            max_age,
            topic=params.camera(cam).topic,
            message_type=params.camera(cam).message_type,
            used_by_model=cam in required,
        )
    return statuses
