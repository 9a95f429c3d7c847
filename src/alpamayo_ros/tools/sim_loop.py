"""One closed-loop rollout driven by the node (either transport), recorded as an mcap bag.

Per tick: the world's observation becomes the tick's messages (``sim_messages``), the node answers (in lockstep: a
Path stamped with this tick's t0, or nothing: a missed plan), the answer is checked (frame, 64 finite poses) and the
world steps with it. During the warm-up (the world replays the scenario's own drive for 1.5 s so that the node has
its ego history) the node is fed but not asked. ``--realtime``: the loop keeps the wall pace of the clock and steps
with the newest plan that has arrived, whatever its t0 (the world then tracks an older plan: latency shows as age).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alpamayo_ros.core.decisions import classify_trajectory
from alpamayo_ros.sim.closed_loop import TICK_S, ClosedLoopWorld, DriverOutput, ExpertDriver, Observation
from alpamayo_ros.sim.generate import START_NS
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.sim_drivers import NodeAnswer
from alpamayo_ros.tools.sim_messages import PlanFormatError, plan_poses, tick_messages

PLAN_TOPIC = "/alpamayo_node/output/path"
REASONING_TOPIC = "/alpamayo_node/output/reasoning"
WORLD_TOPIC = "/alpamayo_sim/world"


@dataclass
class NodeRolloutStats:
    """What the node did along a rollout, beyond what the world records (agreement, latency, why plans were missing)."""

    agreements: list[bool] = field(default_factory=list)  # per plan with a definite verdict: reasoning agrees
    # per plan: the stated longitudinal decision equals the one the expert's plan from the same state shows
    expert_decisions: list[bool] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms)
        return {
            "reasoning_action_agreement": float(np.mean(self.agreements)) if self.agreements else None,
            "plans_compared": len(self.agreements),
            "decision_vs_expert_lon": float(np.mean(self.expert_decisions)) if self.expert_decisions else None,
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
            "latency_ms_p90": float(np.percentile(lat, 90)) if lat.size else None,
            "missed_reasons": dict(self.missing),
            "invalid_reasons": dict(self.invalid),
        }


def _ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class _NoBag:
    """Stands in for the bag when a rollout keeps no recording (closed-loop data collection)."""

    def write_raw(self, topic: str, typename: str, ns: int, data: bytes | memoryview) -> None:
        """Drop the message."""


def _bag(bag_path: Path | None) -> contextlib.AbstractContextManager[Any]:
    """A fresh bag at ``bag_path`` (an old one there is replaced), or a sink that keeps nothing for ``None``."""
    if bag_path is None:
        return contextlib.nullcontext(_NoBag())
    bag_path.parent.mkdir(parents=True, exist_ok=True)
    if bag_path.exists():
        import shutil

        shutil.rmtree(bag_path)
    return bagio.BagWriter(bag_path)


def drive_with_node(
    world: ClosedLoopWorld,
    node: Any,
    bag_path: Path | None,
    stats: NodeRolloutStats,
    *,
    frame_id: str = bagio.EGO_FRAME,
    realtime: bool = False,
    on_tick: Callable[[int, int], None] | None = None,
    on_observation: Callable[[Observation], None] | None = None,
) -> None:
    """Run ``world`` to its end with ``node`` (``sim_drivers.InProcessNode`` or ``sim_dds.DdsNode``) planning,
    recorded in a bag at ``bag_path`` (``None``: no bag). ``on_observation`` sees every tick's observation before
    the node answers it (while the world still stands at that tick).

    Raises whatever the transport raises (the node died or never came up); the world keeps the ticks run so far.
    """
    from rclpy.serialization import serialize_message

    expert = ExpertDriver(world)
    start_rollout = getattr(node, "start_rollout", None)  # in process: a fresh intake (DDS: the node's own state)
    if start_rollout is not None:
        start_rollout()
    with _bag(bag_path) as bag:
        next_wall = time.monotonic()
        while not world.done:
            obs = world.observe()
            if on_observation is not None:
                on_observation(obs)
            messages = list(tick_messages(world, obs))
            for m in messages:
                bag.write_raw(m.topic, m.typename, m.stamp_ns, m.cdr())
            publish_world = getattr(node, "publish_world", None)
            if publish_world is not None:
                markers = publish_world(obs.world, obs.stamp_ns)
                bag.write_raw(
                    WORLD_TOPIC, "visualization_msgs/msg/MarkerArray", obs.stamp_ns, serialize_message(markers)
                )
            engaged = obs.t_s >= world.warmup_s - 1e-9
            if realtime:
                answer = node.answer(messages, obs.stamp_ns, want_plan=engaged, wait=False)
            else:
                answer = node.answer(messages, obs.stamp_ns, want_plan=engaged)
            output, t0_s = _take(answer, frame_id, stats, bag, serialize_message)
            if output is not None and answer.reasoning is not None and engaged:
                stats.expert_decisions.append(_stated_matches_expert(answer.reasoning, expert, obs))
            if engaged and output is None and answer.why_not and not realtime:
                stats.missing[answer.why_not] = stats.missing.get(answer.why_not, 0) + 1
            world.step(output, t0_s)
            if on_tick is not None:
                on_tick(world.tick, world.num_ticks)
            if realtime:
                next_wall += TICK_S
                time.sleep(max(0.0, next_wall - time.monotonic()))


def _stated_matches_expert(coc: Any, expert: ExpertDriver, obs: Any) -> bool:
    """Whether the node's stated longitudinal decision is the one the expert's plan from the same state shows."""
    poses = expert.plan(obs).poses
    xyz = np.column_stack([poses[:, 0], poses[:, 1], np.zeros(len(poses))])
    shown = classify_trajectory(xyz, obs.ego.v_mps)
    return int(coc.reasoning_decision.longitudinal) == int(shown.longitudinal)


def _take(
    answer: NodeAnswer, frame_id: str, stats: NodeRolloutStats, bag: Any, serialize: Any
) -> tuple[DriverOutput | None, float | None]:
    """The world's input from the node's answer (recorded in the bag), or None for a missing or invalid plan."""
    path = answer.path
    if path is None:
        return None, None
    t0_ns = _ns(path.header.stamp)
    bag.write_raw(PLAN_TOPIC, bagio.PATH, t0_ns, serialize(path))
    reasoning = ""
    if answer.reasoning is not None:
        coc = answer.reasoning
        bag.write_raw(REASONING_TOPIC, bagio.COC, t0_ns, serialize(coc))
        reasoning = str(coc.reasoning_text)
        if int(coc.agreement) != 0:  # 0 = unknown: no definite verdict
            stats.agreements.append(int(coc.agreement) == 1)
        stats.latencies_ms.append(float(coc.latency.total_ms))
    try:
        if path.header.frame_id != frame_id:
            raise PlanFormatError(f"plan in frame {path.header.frame_id!r}, expected {frame_id!r} (the ego at t0)")
        poses = plan_poses(path)
    except PlanFormatError as exc:
        stats.invalid[str(exc)] = stats.invalid.get(str(exc), 0) + 1
        return None, None
    return DriverOutput(poses, reasoning), (t0_ns - START_NS) / 1e9
