"""A scenario as time-ordered sensor samples and ground truth (what a bag holds), independent of ROS.

Timing: the scenario starts at START_NS (ROS time); cameras fire together at 10 Hz from t = 0, odometry at 50 Hz.
The ground truth at every camera tick t0: the ego's future at t0 + 0.1 .. 6.4 s in the ego frame at t0 (x forward,
y left, yaw relative), and the reference Chain-of-Causation label (labels.py: what the ego does next, and why).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from alpamayo_ros.core.decisions import trajectory_facts
from alpamayo_ros.core.rig import FUTURE_STEPS, STEP_SEC
from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.sim.distributions import Value
from alpamayo_ros.sim.labels import ReferenceLabel, make_label
from alpamayo_ros.sim.planner import CAMERA_EVERY, ODOM_EVERY, SIM_DT, EgoTrack, plan, simulate
from alpamayo_ros.sim.render import Renderer
from alpamayo_ros.sim.rig import RigCamera, make_rig
from alpamayo_ros.sim.scenes import build_scenario
from alpamayo_ros.sim.world import Scenario

LOOKAHEAD_STEP_SEC = 0.5
START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: a fixed, recognisable epoch for synthetic bags


@dataclass(frozen=True)
class EgoSample:
    """Ego state in the world ("odom") frame; speed and yaw rate in the ego frame (base_link)."""

    stamp_ns: int
    x: float
    y: float
    yaw: float
    v_mps: float
    yaw_rate: float


@dataclass(frozen=True)
class CameraTick:
    """All cameras at one instant, plus the ground truth for planning at that instant."""

    stamp_ns: int
    images: tuple[UInt8Array, ...]  # in rig order (core.rig.CAMERA_NAMES), RGB (H, W, 3)
    future: FloatArray  # (64, 3): x, y (m), yaw (rad) in the ego frame at stamp_ns
    label: ReferenceLabel


@dataclass
class GeneratedScenario:
    """A drawn and simulated scenario; iterate ticks() / odometry() to get its data."""

    scenario: Scenario
    track: EgoTrack
    cameras: tuple[RigCamera, ...]

    @property
    def num_ticks(self) -> int:
        return math.floor(self.scenario.seconds / STEP_SEC + 1e-9)

    def odometry(self) -> Iterator[EgoSample]:
        tr = self.track
        n_end = round(self.scenario.seconds / SIM_DT)
        for i in range(0, n_end, ODOM_EVERY):
            yield EgoSample(
                START_NS + round(tr.t[i] * 1e9),
                float(tr.x[i]),
                float(tr.y[i]),
                float(tr.yaw[i]),
                float(tr.v[i]),
                float(tr.yaw_rate[i]),
            )

    def label_at(self, i: int) -> ReferenceLabel:
        """The reference label at simulation step i: what the ego does next (its ground-truth future) and why."""
        tr = self.track
        t = float(tr.t[i])
        ctx = plan(self.scenario, t, float(tr.s[i]), float(tr.d[i]), float(tr.v[i]))
        future = trajectory_facts(tr.future_in_ego_frame(t, FUTURE_STEPS, STEP_SEC)[:, :2], float(tr.v[i]))
        return make_label(ctx, float(tr.v[i]), future, upcoming_constraint(self.scenario, tr, i))

    def ticks(self, render: bool = True) -> Iterator[CameraTick]:
        """Camera ticks in time order; render=False skips the images (ground truth only, fast)."""
        renderer = Renderer(self.scenario, self.cameras) if render else None
        tr = self.track
        for k in range(self.num_ticks):
            i = k * CAMERA_EVERY
            t = float(tr.t[i])
            images: tuple[UInt8Array, ...] = ()
            if renderer is not None:
                images = tuple(renderer.render(t, float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i])))
            yield CameraTick(
                START_NS + round(t * 1e9),
                images,
                tr.future_in_ego_frame(t, FUTURE_STEPS, STEP_SEC),
                self.label_at(i),
            )


def upcoming_constraint(scenario: Scenario, track: EgoTrack, i: int) -> str:
    """The first constraint the planner reacts to along ``track`` within the 6.4 s horizon after step ``i``
    (checked every LOOKAHEAD_STEP_SEC): what the reference reasoning cites when nothing binds yet."""
    step = round(LOOKAHEAD_STEP_SEC / SIM_DT)
    for j in range(i + step, i + round(FUTURE_STEPS * STEP_SEC / SIM_DT) + 1, step):
        reason = plan(scenario, float(track.t[j]), float(track.s[j]), float(track.d[j]), float(track.v[j])).reason
        if reason != "free":
            return reason
    return "free"


def generate(
    name: str,
    seed: int,
    seconds: float,
    width: int = 1920,
    height: int = 1080,
    *,
    distribution: str = "default",
    overrides: dict[str, Value] | None = None,
) -> GeneratedScenario:
    """Draw and simulate a scenario (deterministic for equal arguments); rendering happens lazily in ticks().

    distribution: a name from distributions.DISTRIBUTIONS; overrides: scene parameters fixed by name (params.py)."""
    scenario = build_scenario(name, seed, seconds, distribution, overrides)
    return GeneratedScenario(scenario, simulate(scenario), make_rig(width, height))
