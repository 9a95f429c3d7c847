"""Run work units on Ray: one actor per worker holding the model, units streamed to idle actors.

Each actor (``executor.Worker``) loads the model once and reserves ``cpus_per_worker`` CPUs and
``gpus_per_worker`` GPUs (fractions allowed: several small-driver actors can share one GPU). Every actor runs one
unit at a time and gets the next as soon as it is done, so at most ``workers`` units are in flight and results come
back one bag at a time (memory stays flat however many bags there are). Faults, each retried up to ``retries``
times and then reported with its reason: the unit raises (an unreadable bag); the actor dies (a crash of the worker
process: a fresh actor replaces it); the unit runs past ``task_timeout_sec`` (its actor is killed and replaced).

Without an address a private local Ray is started for the run (loopback only, no dashboard) and shut down at the
end; with one (``auto``, ``ray://host:10001``) the run joins that cluster as given, whose workers must have this
package installed at the same version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from alpamayo_ros.tools.fleet.executor import Listener, Outcome, Status, Worker, WorkerStartError, failure_text
from alpamayo_ros.tools.fleet.units import Loader, WorkUnit

POLL_SEC = 0.5  # longest wait between checks of the running units' time limits
# Longest time with no worker ready (all loading their model or waiting for resources) before the run gives up:
# a full-size checkpoint loads in minutes, not in a quarter of an hour.
WORKER_START_SEC = 900.0


# Ray turns a loopback node address into the machine's external one unless it runs as a single-machine cluster
# (its macOS / Windows mode, chosen by this variable, read when ray is imported and by the processes it starts).
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class LoopbackError(WorkerStartError):
    """The local Ray did not come up on 127.0.0.1 (it would listen on other interfaces)."""


def local_init_options(num_cpus: int) -> dict[str, Any]:
    """ray.init arguments for a private single-machine cluster that listens on loopback only."""
    return {
        "address": "local",  # always a new cluster: never join one that RAY_ADDRESS happens to name
        "num_cpus": num_cpus,
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",
        "logging_level": logging.WARNING,
        "log_to_driver": False,  # worker output would break the progress line; failures come back as reasons
    }


@contextlib.contextmanager
def single_machine_mode() -> Iterator[None]:
    """Within: Ray keeps a loopback node address as it is, for what it starts or joins here (see SINGLE_MACHINE_ENV).

    Only for a cluster on this machine alone: a driver on a node of a real cluster must use the node's address.
    """
    from ray._private import ray_constants

    previous = os.environ.get(SINGLE_MACHINE_ENV)
    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE_ENV] = "0"  # read by the processes Ray starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # read by this process (ray may be imported already)
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        if previous is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = previous


def start_local_ray(num_cpus: int) -> None:
    """Start a private Ray on this machine whose every server binds 127.0.0.1; LoopbackError if it does not."""
    import ray

    with single_machine_mode():
        ray.init(**local_init_options(num_cpus))
    address = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    if address != "127.0.0.1":
        ray.shutdown()
        raise LoopbackError(f"the local Ray came up on {address}, not 127.0.0.1: refusing to run on it")


def _on_loopback(address: str) -> bool:
    """Whether a cluster address (``auto``: the cluster this machine runs, if any) is on 127.0.0.1 / localhost."""
    from ray._private.services import get_ray_address_from_environment

    try:
        resolved = get_ray_address_from_environment("auto", None) if address == "auto" else address
    except Exception:  # no cluster running here: ray.init says so itself
        return False
    host = str(resolved or "").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def join_cluster(address: str) -> None:
    """Connect this driver to the cluster at ``address`` as given (``auto``, ``host:port``, ``ray://host:port``).

    A cluster started on loopback only is joined in single-machine mode (else Ray would look for it on the
    machine's external address and wait forever). Ray's token authentication is left as the cluster has it.
    """
    import ray

    loopback = not address.startswith("ray://") and _on_loopback(address)
    try:
        with single_machine_mode() if loopback else contextlib.nullcontext():
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError... for an address Ray cannot use
        hint = " (a cluster with token authentication: RAY_AUTH_MODE=token and its token)" if "://" in address else ""
        raise WorkerStartError(f"--address {address}: {failure_text(exc)}{hint}") from exc


@dataclass
class _Running:
    unit: WorkUnit
    outcome: Outcome
    slot: int
    started: float


@dataclass
class RayExecutor:
    workers: int | None = None  # None: as many as the cluster's CPUs (or GPUs / gpus_per_worker) allow
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    address: str | None = None
    retries: int = 0
    task_timeout_sec: float | None = None
    name: str = "ray"
    started_workers: int = field(default=0, init=False)  # actors started, replacements included (for reports)

    def _worker_count(self, ray: Any) -> int:
        if self.workers:
            return self.workers
        resources = ray.cluster_resources()
        if self.gpus_per_worker > 0:
            return max(1, int(resources.get("GPU", 0) / self.gpus_per_worker))
        return max(1, int(resources.get("CPU", 1) / self.cpus_per_worker))

    def run(self, units: Sequence[WorkUnit], loader: Loader, listener: Listener) -> Iterator[Outcome]:
        import ray

        owned = not ray.is_initialized()
        if owned:
            if self.address is None:
                start_local_ray(self.workers or os.cpu_count() or 1)
            else:
                join_cluster(self.address)
        actor_cls = ray.remote(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_restarts=0, max_task_retries=0
        )(Worker)
        actors: list[Any] = []

        def spawn() -> Any:
            self.started_workers += 1
            return actor_cls.remote(loader)

        try:
            self._check_feasible(ray)
            actors = [spawn() for _ in range(min(self._worker_count(ray), max(1, len(units))))]
            yield from self._schedule(ray, units, spawn=spawn, actors=actors, listener=listener)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            if owned:
                ray.shutdown()

    def _check_feasible(self, ray: Any) -> None:
        """Refuse at once what no node of the cluster can hold (Ray would keep such a worker pending forever)."""
        have = ray.cluster_resources()
        if self.gpus_per_worker > have.get("GPU", 0) or self.cpus_per_worker > have.get("CPU", 0):
            raise WorkerStartError(
                f"a worker needs {self.cpus_per_worker:g} CPU and {self.gpus_per_worker:g} GPU; the cluster has "
                f"{have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs"
            )

    def _schedule(
        self,
        ray: Any,
        units: Sequence[WorkUnit],
        *,
        spawn: Callable[[], Any],
        actors: list[Any],
        listener: Listener,
    ) -> Iterator[Outcome]:
        queue = deque((u, Outcome(u.key, Status.FAILED)) for u in units)
        idle: deque[int] = deque()
        about: list[dict[str, Any]] = [{} for _ in actors]  # host, pid, load_sec of each slot's actor
        # ready() ref of an actor still loading its model -> its slot; units go to actors as they become ready,
        # so a worker the cluster cannot place yet delays nothing
        starting: dict[Any, int] = {actor.ready.remote(): slot for slot, actor in enumerate(actors)}
        running: dict[Any, _Running] = {}  # run() ref -> what it runs
        no_worker_since = time.monotonic()

        def replace(slot: int) -> None:
            ray.kill(actors[slot], no_restart=True)
            actors[slot] = spawn()
            starting[actors[slot].ready.remote()] = slot

        def give_back(task: _Running, reason: str) -> Outcome | None:
            task.outcome.errors.append(reason)
            if task.outcome.attempts <= self.retries:
                listener.retrying(task.unit.key, reason)
                queue.appendleft((task.unit, task.outcome))
                return None
            listener.finished(task.outcome)
            return task.outcome

        while queue or running or starting:
            while idle and queue:
                unit, outcome = queue.popleft()
                slot = idle.popleft()
                outcome.attempts += 1
                if outcome.attempts == 1:
                    listener.started(unit.key)
                running[actors[slot].run.remote(unit)] = _Running(unit, outcome, slot, time.monotonic())
            if running or idle:
                no_worker_since = time.monotonic()
            elif time.monotonic() - no_worker_since > WORKER_START_SEC:
                raise WorkerStartError(f"no worker became ready within {WORKER_START_SEC:g} s (model load, resources)")
            refs = [*running, *starting]
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._wait_sec(running))
            for ref in ready:
                if ref in starting:
                    slot = starting.pop(ref)
                    try:
                        about[slot] = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise WorkerStartError(f"a worker could not load the model: {_reason(ray, exc)}") from None
                    idle.append(slot)
                    continue
                task = running.pop(ref)
                try:
                    result, elapsed = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    replace(task.slot)
                    done = give_back(task, f"worker died: {_reason(ray, exc)}")
                except ray.exceptions.RayError as exc:
                    idle.append(task.slot)
                    done = give_back(task, _reason(ray, exc))
                else:
                    idle.append(task.slot)
                    task.outcome.status, task.outcome.result = Status.OK, result
                    task.outcome.elapsed_sec, task.outcome.worker = elapsed, about[task.slot]
                    listener.finished(task.outcome)
                    done = task.outcome
                if done is not None:
                    yield done
            for ref, task in list(running.items()):
                if self.task_timeout_sec and time.monotonic() - task.started > self.task_timeout_sec:
                    del running[ref]
                    replace(task.slot)
                    done = give_back(task, f"exceeded the task time limit of {self.task_timeout_sec:g} s")
                    if done is not None:
                        yield done

    def _wait_sec(self, running: dict[Any, _Running]) -> float:
        """How long ray.wait may block: until the nearest time limit, at most POLL_SEC."""
        if not self.task_timeout_sec or not running:
            return POLL_SEC
        nearest = min(t.started for t in running.values()) + self.task_timeout_sec - time.monotonic()
        return max(0.0, min(POLL_SEC, nearest))


def _reason(ray: Any, exc: BaseException) -> str:
    """One line for a failed attempt: the unit's own exception where Ray wraps one, else Ray's first line."""
    if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        return failure_text(exc.cause)
    if isinstance(exc, ray.exceptions.RayActorError):
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        if exc.actor_init_failed:  # Ray's text ends with the traceback of __init__: its last line is the exception
            return lines[-1]
        return lines[0].split(". ")[0]  # several paragraphs: the first sentence says what happened
    return failure_text(exc)
