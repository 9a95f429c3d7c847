"""A fingerprint of the code that decides what a generated scenario contains, for cache keys.

Cached training renders, evaluation bags and demo bags are reused by their parameters; without this, a change to the
planner or to the reference labels would silently keep serving the old ground truth.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

_SIM = Path(__file__).resolve().parent
# Everything a scenario's frames, trajectory and labels depend on (labels use the monitor's classification); the
# closed-loop modules beside them do not change what the open-loop generator writes.
_GENERATOR_MODULES = (
    "distributions",
    "dressing",
    "generate",
    "labels",
    "params",
    "planner",
    "render",
    "rig",
    "road",
    "scenes",
    "world",
)
_SOURCES = (*(_SIM / f"{name}.py" for name in _GENERATOR_MODULES), _SIM.parent / "core" / "decisions.py")


@functools.cache
def generator_fingerprint() -> str:
    """10 hex digits of a hash over the generator's source files and our message definitions (bags carry the
    reference labels as ChainOfCausation messages, read back with the current definitions)."""
    from alpamayo_ros.interfaces import msg_definitions

    digest = hashlib.sha256()
    for path in _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for name, text in sorted(msg_definitions().items()):
        digest.update(name.encode())
        digest.update(text.encode())
    return digest.hexdigest()[:10]
