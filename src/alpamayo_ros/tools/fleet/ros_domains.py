"""A ROS domain of its own for each simulation worker that talks DDS, so that concurrent rollouts never cross-talk.

A worker's simulator and the node under test are two processes on one host that find each other by DDS discovery.
Two workers on one host in one domain would take each other's clock, frames and plans (every rollout's ticks carry
the same stamps, so a stray plan would even look right). Each such worker therefore holds a domain ID of its own for
as long as it lives, taken with ROS's ``domain_coordinator`` (what launch_testing uses): an ID is held by binding TCP
port 32768 + ID on the host (bound, never listening), so the workers of concurrent runs and the ``launch_testing``
processes on the host never take the same one. IDs come from 1-100, the range ROS advises (its UDP ports stay below
Linux's ephemeral ports), skipping the domain of the process that started the run (the user's own, 0 by default).
Discovery is kept on the host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``): the node runs beside its simulator, and
workers on other hosts may hold the same ID.

Both variables are set in the worker's environment before rclpy is initialised there; the node's child process
inherits them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

FIRST_DOMAIN, LAST_DOMAIN = 1, 100  # domain_coordinator's range


class DomainError(RuntimeError):
    """No ROS domain could be taken for this worker (one line, saying why)."""


def _candidates(avoid: int | None) -> Iterator[int]:
    while True:
        yield from (d for d in range(FIRST_DOMAIN, LAST_DOMAIN + 1) if d != avoid)


def claim_worker_domain(avoid: int | None) -> tuple[int, contextlib.ExitStack]:
    """Take a free domain on this host (not ``avoid``) and make it this process's; closing the stack frees it.

    Raises:
        DomainError: rclpy already runs in this process (its domain is fixed), or every domain is held.
    """
    from domain_coordinator import domain_id

    rclpy = sys.modules.get("rclpy")
    if rclpy is not None and rclpy.ok():
        raise DomainError("rclpy was initialised in this worker before its ROS domain was chosen")
    candidates = _candidates(avoid)
    stack = contextlib.ExitStack()
    try:
        domain = int(stack.enter_context(domain_id(lambda: next(candidates))))
    except RuntimeError as exc:  # domain_coordinator's "Failed to get a unique ROS domain ID"
        raise DomainError(f"no free ROS domain in {FIRST_DOMAIN}-{LAST_DOMAIN} on this host: {exc}") from None
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return domain, stack


def own_domain() -> int:
    """This process's ROS domain (ROS_DOMAIN_ID, 0 when unset or not a number, as rcl reads it)."""
    try:
        return int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
    except ValueError:
        return 0
