"""Progress of a fleet run on one line: bags done / running / failed, throughput and ETA (tqdm)."""

from __future__ import annotations

import sys
from typing import Any

from alpamayo_ros.tools.fleet.executor import Outcome, Status


class Progress:
    """A Listener for the executors: counts units and shows them (nothing is shown when ``enabled`` is False)."""

    def __init__(self, total: int, unit: str = "bag", enabled: bool = True) -> None:
        from tqdm import tqdm

        self.running = 0
        self.failed = 0
        self.retried = 0
        self.bar: Any = tqdm(total=total, unit=unit, desc="fleet", disable=not enabled, file=sys.stderr)

    def _show(self) -> None:
        self.bar.set_postfix(running=self.running, failed=self.failed, retried=self.retried, refresh=True)

    def started(self, key: str) -> None:
        self.running += 1
        self._show()

    def retrying(self, key: str, reason: str) -> None:
        self.retried += 1
        self.bar.write(f"retrying {key}: {reason}")
        self._show()

    def finished(self, outcome: Outcome) -> None:
        self.running -= 1
        if outcome.status is not Status.OK:
            self.failed += 1
            self.bar.write(f"failed {outcome.key} after {outcome.attempts} attempts: {outcome.reason}")
        self.bar.update(1)
        self._show()

    def close(self) -> None:
        self.bar.close()
