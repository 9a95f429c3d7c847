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

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from alpamayo_ros.tools.fleet.executor import Listener, Outcome, Status, Worker, failure_text
from alpamayo_ros.tools.fleet.units import Loader, WorkUnit

POLL_SEC = 0.5  # longest wait between checks of the running units' time limits


class WorkerStartError(RuntimeError):
    """A worker could not load the model: every unit would fail the same way, so the run stops at once."""


# Ray turns a loopback node address into the machine's external one unless it runs as a single-machine cluster
# (its macOS / Windows mode, chosen by this variable, read when ray is imported and by the processes it starts).
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class LoopbackError(RuntimeError):
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


def start_local_ray(num_cpus: int) -> None:
    """Start a private Ray on this machine whose every server binds 127.0.0.1; LoopbackError if it does not."""
    import os

    previous = os.environ.get(SINGLE_MACHINE_ENV)
    os.environ[SINGLE_MACHINE_ENV] = "0"
    import ray
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # ray may have been imported before the variable was set
    try:
        ray.init(**local_init_options(num_cpus))
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        if previous is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = previous
    address = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    if address != "127.0.0.1":
        ray.shutdown()
        raise LoopbackError(f"the local Ray came up on {address}, not 127.0.0.1: refusing to run on it")


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
        import os

        import ray

        owned = not ray.is_initialized()
        if owned:
            if self.address is None:
                start_local_ray(self.workers or os.cpu_count() or 1)
            else:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        actor_cls = ray.remote(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_restarts=0, max_task_retries=0
        )(Worker)
        actors: list[Any] = []

        def spawn() -> Any:
            self.started_workers += 1
            return actor_cls.remote(loader)

        try:
            actors = [spawn() for _ in range(min(self._worker_count(ray), max(1, len(units))))]
            about: list[dict[str, Any]] = []
            for actor in actors:
                try:
                    about.append(ray.get(actor.ready.remote()))
                except ray.exceptions.RayError as exc:
                    raise WorkerStartError(f"a worker could not load the model: {_reason(ray, exc)}") from None
            yield from self._schedule(ray, units, spawn=spawn, actors=actors, about=about, listener=listener)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            if owned:
                ray.shutdown()

    def _schedule(
        self,
        ray: Any,
        units: Sequence[WorkUnit],
        *,
        spawn: Callable[[], Any],
        actors: list[Any],
        about: list[dict[str, Any]],
        listener: Listener,
    ) -> Iterator[Outcome]:
        queue = deque((u, Outcome(u.key, Status.FAILED)) for u in units)
        idle = deque(range(len(actors)))
        starting: dict[Any, int] = {}  # ready() ref of a replacement actor -> its slot
        running: dict[Any, _Running] = {}  # run() ref -> what it runs

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
        # Ray's text runs over several paragraphs; the first sentence says what happened
        return str(exc).strip().splitlines()[0].split(". ")[0]
    return failure_text(exc)
