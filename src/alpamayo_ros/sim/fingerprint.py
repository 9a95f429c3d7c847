"""A fingerprint of the code that decides what a generated scenario contains, for cache keys.

Cached training renders, evaluation bags and demo bags are reused by their parameters; without this, a change to the
planner or to the reference labels would silently keep serving the old ground truth.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

_SCENARIOS = Path(__file__).resolve().parent
# Everything a scenario's frames, trajectory and labels depend on (labels use the monitor's classification); the
# closed-loop modules beside them (vehicle, tracking, agents, metrics, ...) do not change what generate() produces.
_GENERATOR = ("generate.py", "labels.py", "planner.py", "render.py", "rig.py", "road.py", "world.py")
_SOURCES = (*(_SCENARIOS / name for name in _GENERATOR), _SCENARIOS.parent / "core" / "decisions.py")


@functools.cache
def generator_fingerprint() -> str:
    """10 hex digits of a hash over the generator's source files."""
    digest = hashlib.sha256()
    for path in _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]
