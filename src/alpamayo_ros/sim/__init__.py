"""Procedural seven-camera driving scenarios with ground truth (future trajectory + reference reasoning).

build_scenario (scenes.py) draws a scenario from a kind, a seed and a named distribution of scene parameters
(distributions.py: the axes and their ranges; params.py: SceneParams, overrides, describe); simulate (planner.py)
drives the ego with a rule-based planner; Renderer (render.py) draws the cameras; generate (generate.py) ties them
into a stream of timestamped camera frames, odometry samples and ground truth that bags.py writes as a rosbag2 bag.

Closed loop (the ego driven by a driver's plans): closed_loop.py (ClosedLoopWorld, reference drivers) on vehicle.py
(bicycle plant), tracking.py (LQR plan tracker) and agents.py (IDM-reactive agents); metrics.py scores a rollout,
rollout_report.py draws it.
"""

from __future__ import annotations

from alpamayo_ros.sim.distributions import AXES, DISTRIBUTIONS
from alpamayo_ros.sim.generate import CameraTick, EgoSample, GeneratedScenario, generate
from alpamayo_ros.sim.params import ParamError, SceneParams, describe, parse_overrides
from alpamayo_ros.sim.rig import RIG_MOUNTS, RigCamera, make_rig
from alpamayo_ros.sim.scenes import build_from_params, build_scenario
from alpamayo_ros.sim.world import SCENARIOS

__all__ = [
    "AXES",
    "DISTRIBUTIONS",
    "RIG_MOUNTS",
    "SCENARIOS",
    "CameraTick",
    "EgoSample",
    "GeneratedScenario",
    "ParamError",
    "RigCamera",
    "SceneParams",
    "build_from_params",
    "build_scenario",
    "describe",
    "generate",
    "make_rig",
    "parse_overrides",
]
