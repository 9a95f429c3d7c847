"""Settings of the node's output messages (the ``output.*`` parameters): frames, the odom path, marker style.

Kept apart from ``core.builders`` so that reading a node configuration (evaluation, simulation, the launch file)
never imports ROS message classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpamayo_ros.core.param_fields import param


@dataclass(frozen=True)
class OutputParams:
    """Frames of the published plan and the look of its RViz markers (metres, seconds)."""

    frame_id: str = param("base_link", "frame of ~/output/path and markers: the ego frame at t0")
    publish_odom_path: bool = param(True, "also publish ~/output/path_odom (plan composed with the t0 odometry pose)")
    odom_frame_id: str = param("", "frame of ~/output/path_odom; '' = the odometry header's frame")
    marker_z_offset_m: float = param(
        0.2, "markers are raised by this much above the ground plane", min_value=-5.0, max_value=5.0, when="live"
    )
    marker_lifetime_sec: float = param(
        3.0,
        "markers vanish this long after their plan unless a newer plan replaces them (set above the inference "
        "latency: ~1.5 s for full-size R1 on an H200 eager); a node that stops planning shows nothing stale",
        min_value=0.1,
        max_value=60.0,
        when="live",
    )
    text_wrap_chars: int = param(48, "reasoning text marker line width", min_value=10, max_value=400, when="live")
    vehicle_length_m: float = param(4.8, "ego footprint length", min_value=0.5, max_value=30.0, when="live")
    vehicle_width_m: float = param(1.9, "ego footprint width", min_value=0.5, max_value=5.0, when="live")
    rear_overhang_m: float = param(
        1.0, "ego footprint: rear bumper behind the base_link origin", min_value=0.0, max_value=10.0, when="live"
    )
