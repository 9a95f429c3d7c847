"""A worker loader for Ray tests that must see units run side by side on distinct workers.

The executors hand a unit to the first worker that is ready and never wait for a slow one (a worker the cluster
cannot place must delay nothing). On a loaded 2-core runner one worker can therefore finish two short units before
the other has loaded, which is right for users and wrong for a test that asserts concurrency. Wrapping the loader in
``LoadsTogether`` holds every worker until all of them have loaded, so the units start together.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEET_TIMEOUT_SEC = 120.0  # after this a worker goes on alone, and the test's own assertion names what went wrong


@dataclass(frozen=True)
class LoadsTogether:
    """``inner``'s state, returned once ``workers`` workers have loaded (each leaves a file in ``meeting``)."""

    inner: Callable[[], Any]
    meeting: Path
    workers: int = 2

    def __call__(self) -> Any:
        state = self.inner()
        self.meeting.mkdir(parents=True, exist_ok=True)
        (self.meeting / f"{socket.gethostname()}_{os.getpid()}").touch()
        deadline = time.monotonic() + MEET_TIMEOUT_SEC
        while len(list(self.meeting.iterdir())) < self.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        return state
