"""Drivers of the closed-loop simulator that run the node's planning step: in process, or the real node over DDS.

Both answer one tick at a time from the messages of ``sim_messages.tick_messages`` and return the node's own output
messages for that tick's t0 (nav_msgs/Path + ChainOfCausation, built by ``nodes.plan_messages`` in both cases):

- ``InProcessNode`` feeds the messages to the node's ``core.intake.InputIntake`` and calls ``core.planning.select_job``
  and ``nodes.plan_messages.plan_and_build`` itself, with the model brought up by ``core.model_setup`` as the node's
  configure does. No DDS, no timer, no threads: deterministic, for sweeps and for training on the driver's own states.
- ``sim_dds.DdsNode`` publishes the same bytes to the unchanged ``alpamayo_node`` and waits for its answer.

With a deterministic model both give the same plans, bit for bit (a test checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from alpamayo_ros.core.diagnostics import PlanningStats
from alpamayo_ros.core.intake import InputIntake
from alpamayo_ros.core.model_setup import ModelLoader, prepare_model
from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.core.planning import Skip, select_job, sync_config
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.sim_messages import SimMessage, camera_of_topic


@dataclass(frozen=True)
class NodeAnswer:
    """The node's outputs for one tick: its Path and reasoning (rclpy messages), or why there are none."""

    path: Any | None
    reasoning: Any | None
    why_not: str = ""


def sim_params(params: NodeParams) -> NodeParams:
    """The node configuration a simulated rollout runs with: the user's, with the inputs mapped onto the simulator's
    topics and the overlay off (the simulator sends no CameraInfo subscription it would need)."""
    cameras = tuple(
        dataclasses.replace(cam, topic=bagio.image_topic(cam.name), message_type="image") for cam in params.cameras
    )
    return dataclasses.replace(params, cameras=cameras, overlay=dataclasses.replace(params.overlay, enabled=False))


class InProcessNode:
    """The node's planning step in this process: same intake, same tick functions, same output messages."""

    name = "node"

    def __init__(
        self, params: NodeParams, load_model: ModelLoader, log: Callable[[str], None] = lambda _: None
    ) -> None:
        from alpamayo_ros.nodes.plan_messages import plan_and_build

        self.params = sim_params(params)
        self.intake = InputIntake()
        self.stats = PlanningStats()
        self.model = prepare_model(load_model, self.params, self.intake, log)
        self._plan_and_build = plan_and_build

    def start_rollout(self) -> None:
        """Forget the previous rollout's inputs, as a node started for this rollout would have none.

        Every rollout's clock starts at the same time, so the intake would otherwise see time jump back and drop the
        new rollout's first messages as strays: a rollout's plans would depend on what ran before it.
        """
        self.intake = InputIntake()
        self.intake.configure(sync_config(self.params.sync, self.model.info), self.params.ego, self.params.input)
        self.stats = PlanningStats()

    def answer(self, messages: Iterable[SimMessage], stamp_ns: int, *, want_plan: bool) -> NodeAnswer:
        """Take one tick's messages (node clock = ``stamp_ns``) and, if ``want_plan``, plan on the newest sample."""
        for m in messages:
            if m.typename == bagio.ODOMETRY:
                self.intake.add_odometry(m.msg, stamp_ns)
            elif m.typename == bagio.IMAGE and (cam := camera_of_topic(m.topic)) is not None:
                self.intake.add_image(cam, m.msg, stamp_ns)
        if not want_plan:
            return NodeAnswer(None, None, "not asked")
        prm = self.params
        job = select_job(
            self.intake,
            stamp_ns,
            self.stats,
            planning=prm.planning,
            ego=prm.ego,
            backwards_jump_sec=prm.sync.backwards_jump_sec,
        )
        if isinstance(job, Skip):
            return NodeAnswer(None, None, job.reason)
        done = self._plan_and_build(self.model, job, prm, None)
        if done.messages is None:
            return NodeAnswer(None, None, done.failure.splitlines()[0])
        return NodeAnswer(done.messages.path, done.messages.reasoning[0])

    def close(self) -> None:
        self.model.close()
