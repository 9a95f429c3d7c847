"""Executors: run work units on workers that each hold one loaded model, yield one outcome per unit as it ends.

``SerialExecutor`` (the default, no Ray) runs every unit in this process on one model. ``ray_executor.RayExecutor``
runs them on a Ray cluster. Both give every unit up to ``1 + retries`` attempts (an exception in the unit, a worker
that died, a unit over its time limit) and then report it failed with the reason of each attempt: a unit is never
dropped and a run never waits forever. Outcomes are yielded as units end (completion order, not input order), so the
caller can write each one out at once and keep nothing it does not need.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import FrameType
from typing import Any, Protocol

from alpamayo_ros.tools.fleet.units import Loader, WorkUnit


class Status(Enum):
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"  # not finished when the run was interrupted


@dataclass
class Outcome:
    """How one unit ended: its result (OK) or the reason of every failed attempt."""

    key: str
    status: Status
    result: dict[str, Any] | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)  # one reason per failed attempt, oldest first
    elapsed_sec: float | None = None  # the successful attempt's run time on its worker
    worker: dict[str, Any] = field(default_factory=dict)  # host, pid, model load_sec of the worker that ran it

    @property
    def reason(self) -> str:
        return self.errors[-1] if self.errors else ""


class Listener(Protocol):
    """Told when a unit starts and ends (progress display)."""

    def started(self, key: str) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...

    def retrying(self, key: str, reason: str) -> None: ...


class Executor(Protocol):
    name: str

    def run(self, units: Sequence[WorkUnit], loader: Loader, listener: Listener) -> Iterator[Outcome]:
        """Yield one outcome per unit as it ends; on KeyboardInterrupt stop the workers and re-raise."""
        ...


class WorkerStartError(RuntimeError):
    """A worker could not start (model load, resources): every unit would fail the same way, so the run stops."""


class TaskTimeoutError(Exception):
    """A unit ran past the task time limit."""


class Worker:
    """What runs on each worker: the model, loaded once, and the units run on it (also the Ray actor's body)."""

    def __init__(self, loader: Loader) -> None:
        started = time.perf_counter()
        self.model = loader()
        self.about = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "load_sec": round(time.perf_counter() - started, 3),
            # what the loaded state says of itself beyond that (a simulation worker: its own ROS domain)
            **getattr(self.model, "worker_info", {}),
        }

    def ready(self) -> dict[str, Any]:
        return self.about

    def run(self, unit: WorkUnit) -> tuple[dict[str, Any], float]:
        """(the unit's result, its run time in seconds)."""
        started = time.perf_counter()
        result = unit(self.model)
        return result, time.perf_counter() - started

    def close(self) -> None:
        close: Callable[[], None] | None = getattr(self.model, "close", None)
        if close is not None:
            close()


def failure_text(exc: BaseException) -> str:
    """One line for a failed attempt: the exception type and the first line of its message."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TaskTimeoutError in this thread after ``seconds`` (SIGALRM: main thread only; elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TaskTimeoutError(f"exceeded the task time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class SerialExecutor:
    """Every unit in this process, one after the other, on one model (no Ray needed).

    A worker death here is the death of the run itself, so only exceptions and time limits are retried.
    """

    retries: int = 0
    task_timeout_sec: float | None = None
    name: str = "serial"

    def run(self, units: Sequence[WorkUnit], loader: Loader, listener: Listener) -> Iterator[Outcome]:
        try:
            worker = Worker(loader)
        except Exception as exc:
            raise WorkerStartError(f"could not load the model: {failure_text(exc)}") from exc
        try:
            for unit in units:
                yield self._run_one(worker, unit, listener)
        finally:
            worker.close()

    def _run_one(self, worker: Worker, unit: WorkUnit, listener: Listener) -> Outcome:
        outcome = Outcome(unit.key, Status.FAILED, worker=worker.about)
        listener.started(unit.key)
        while outcome.attempts <= self.retries:
            outcome.attempts += 1
            try:
                with _time_limit(self.task_timeout_sec):
                    outcome.result, outcome.elapsed_sec = worker.run(unit)
            except Exception as exc:  # any failure of the unit is retried, then reported: never raised
                outcome.errors.append(failure_text(exc))
                if outcome.attempts <= self.retries:
                    listener.retrying(unit.key, outcome.reason)
                continue
            outcome.status = Status.OK
            break
        listener.finished(outcome)
        return outcome
