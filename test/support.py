"""Helpers shared by tests: fixture locations, waiting on conditions (never on bare sleeps) and child ROS processes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# Small JSON facts about the release model, kept in the repository so that every clone runs the tests that read them.
FIXTURES = REPO / "test" / "fixtures"
# The official tiny checkpoints and goldens (tens of MB, see test/fixtures/README.md): beside the clone in CI only.
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


def shared_fixture(name: str) -> Path:
    """``SHARED_FIXTURES / name``, or skip the calling test: one reason for all of them when the folder is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"official fixtures absent: no {SHARED_FIXTURES} beside the repository (test/fixtures/README.md)")
    path = SHARED_FIXTURES / name
    if not path.exists():
        pytest.skip(f"official fixture {name} absent from {SHARED_FIXTURES}")
    return path


def wait_until(predicate: Callable[[], bool], timeout_s: float, spin: Callable[[], Any] | None = None) -> bool:
    """Poll predicate (spinning `spin` between polls) until true or timeout; returns the final verdict."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        if spin is not None:
            spin()
        else:
            time.sleep(0.02)
    return predicate()


def start_process(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_process(proc: subprocess.Popen[str], timeout_s: float = 10.0) -> str:
    """SIGINT, then wait; returns the combined output (kills if it hangs, and says so)."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += "\n[test] process did not stop on SIGINT and was killed"
        return out
    out, _ = proc.communicate()
    return out
