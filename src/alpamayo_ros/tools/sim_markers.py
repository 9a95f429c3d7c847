"""The simulated world as an RViz MarkerArray in the odom frame: road edges and lane divider, agents as boxes, the stop
line coloured by the light, the crosswalk. Published by the DDS simulator beside the node's plan and reasoning (an
RViz with fixed frame ``odom`` shows both: the synthetic odometry is the odom <- base_link pose)."""

from __future__ import annotations

import math
from typing import Any

from alpamayo_ros.core.types import FloatArray
from alpamayo_ros.sim.closed_loop import WorldState
from alpamayo_ros.tools import bagio

NAMESPACE = "alpamayo_sim"
# RGBA per agent kind and light state; everything else is grey
AGENT_RGBA = {"vehicle": (0.2, 0.5, 1.0, 0.8), "pedestrian": (1.0, 0.6, 0.1, 0.9)}
LIGHT_RGBA = {"green": (0.1, 0.9, 0.3, 1.0), "yellow": (1.0, 0.8, 0.0, 1.0), "red": (1.0, 0.1, 0.1, 1.0)}
GREY = (0.7, 0.7, 0.7, 0.9)


def world_markers(world: WorldState, stamp_ns: int, frame_id: str = bagio.ODOM_FRAME) -> Any:
    """visualization_msgs/MarkerArray (rclpy) of the world at ``stamp_ns``; each marker replaces its previous self."""
    from builtin_interfaces.msg import Duration
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    from alpamayo_ros.core.builders import header

    markers: list[Any] = [Marker(action=Marker.DELETEALL, ns=NAMESPACE)]

    def marker(kind: int, rgba: tuple[float, float, float, float], width: float) -> Any:
        m = Marker(header=header(stamp_ns, frame_id), ns=NAMESPACE, id=len(markers), type=kind, action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = width
        m.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
        m.lifetime = Duration(sec=1)
        markers.append(m)
        return m

    def line(points: FloatArray, rgba: tuple[float, float, float, float], width: float = 0.15) -> None:
        m = marker(Marker.LINE_STRIP, rgba, width)
        m.points = [Point(x=float(x), y=float(y), z=0.0) for x, y in points]

    for edge in world.road_edges:
        line(edge, GREY)
    line(world.lane_divider, (1.0, 1.0, 1.0, 0.6), 0.1)
    if world.crosswalk is not None:
        line(world.crosswalk, (1.0, 1.0, 1.0, 0.8), 0.2)
    if world.stop_line is not None:
        line(world.stop_line, LIGHT_RGBA.get(world.light_state, GREY), 0.4)
    for agent in world.agents:
        box = marker(Marker.CUBE, AGENT_RGBA.get(agent.kind, GREY), 1.0)
        box.pose.position.x, box.pose.position.y = agent.x, agent.y
        box.pose.position.z = agent.size_m[2] / 2
        box.pose.orientation.z, box.pose.orientation.w = math.sin(agent.yaw / 2), math.cos(agent.yaw / 2)
        box.scale.x, box.scale.y, box.scale.z = agent.size_m
    return MarkerArray(markers=markers)
