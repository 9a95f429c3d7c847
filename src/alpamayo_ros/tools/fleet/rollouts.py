"""Closed-loop rollouts as fleet work units: one scenario and seed, with its rollouts by each driver, per task.

A worker's state (``SimWorker``, built once per worker by ``SimWorkerLoader``) is the node driver's transport: the
node's planning step in process with its model loaded once, or, with ``--transport dds``, the unchanged node started
once as the worker's child process, on a Ray worker in a ROS domain of the worker's own (``ros_domains``).
``RolloutSet`` runs ``tools.sim.scenario_rollouts`` on it, the function a single-machine run calls for each scenario
and seed, so a fleet run drives the same rollouts. The expert's rollout comes first because the others' progress is
measured against it; that is why a unit is a scenario and seed, not a single rollout.

The worker writes each rollout's files (bag, GIF, plots) under ``--out`` itself and sends back only the rollouts'
metrics (a few kB each, never frames). On a cluster ``--out`` must be a path every node can write (a shared
filesystem).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools.fleet.ros_domains import claim_worker_domain
from alpamayo_ros.tools.sim import RolloutResult


def encode_rollout(result: RolloutResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def decode_rollout(d: dict[str, Any]) -> RolloutResult:
    return RolloutResult(**d)


class SimWorker:
    """What a simulation worker holds between units: the node driver's transport and the ROS domain it runs in."""

    def __init__(self, node: Any, domain: int | None, hold: contextlib.ExitStack) -> None:
        self._node = node
        self._hold = hold
        self.worker_info: dict[str, Any] = {} if domain is None else {"ros_domain_id": domain}

    def node(self) -> tuple[Any, str]:
        """The transport for ``scenario_rollouts`` (started by the loader: its failure stopped the worker)."""
        return self._node, "" if self._node is not None else "this worker runs no node driver"

    def close(self) -> None:
        if self._node is not None:
            self._node.close()
        self._hold.close()


@dataclass(frozen=True)
class SimWorkerLoader:
    """Builds a worker's ``SimWorker`` once: the node transport when the run has a node driver.

    ``isolate_domain``: take a ROS domain of this worker's own first (Ray workers over DDS), never ``user_domain``.
    A node that cannot start raises here, which stops the run with its reason (every rollout would fail alike).
    """

    params: NodeParams
    args: argparse.Namespace  # the sim's command line
    needs_node: bool
    isolate_domain: bool = False
    user_domain: int = 0

    def __call__(self) -> SimWorker:
        from alpamayo_ros.tools.sim import node_transport

        hold, domain = contextlib.ExitStack(), None
        if not self.needs_node:
            return SimWorker(None, None, hold)
        log_dir: Path = self.args.out / "node"
        if self.isolate_domain and self.args.transport != "inprocess":  # DDS, as node_transport reads it
            domain, hold = claim_worker_domain(avoid=self.user_domain)
            log_dir = log_dir / f"{socket.gethostname()}_{os.getpid()}_domain{domain}"
        try:
            node = node_transport(self.args, self.params, log_dir)
        except BaseException:
            hold.close()
            raise
        return SimWorker(node, domain, hold)


@dataclass(frozen=True)
class RolloutSet:
    """The rollouts of one scenario and seed by ``drivers`` (``tools.sim.scenario_rollouts``), as one unit."""

    scenario: str
    seed: int
    drivers: tuple[str, ...]
    args: argparse.Namespace  # the sim's command line, --out absolute (a worker's working directory is its own)

    @property
    def key(self) -> str:
        return f"{self.scenario} seed {self.seed}"

    def __call__(self, worker: SimWorker) -> dict[str, Any]:
        from alpamayo_ros.tools.sim import scenario_rollouts

        rollouts = scenario_rollouts(self.args, self.scenario, self.seed, self.drivers, node=worker.node, bar=None)
        return {"rollouts": [encode_rollout(r) for r in rollouts]}
