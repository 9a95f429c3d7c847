"""Checks the tools run on their arguments before doing any work, each returning one line naming the problem.

A tool prints the line as ``alpamayo-ros <command>: <line>`` and exits 2, instead of failing minutes later (after a
render, a model load or a training data pass) with a traceback from deep inside.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path


def output_path_problem(option: str, path: Path, *, directory: bool = False) -> str | None:
    """Why ``path`` (a file or folder the tool will create, parents included) cannot be created; None if it can.

    The nearest existing ancestor must be a writable directory: a file there, or a read-only folder, would only
    surface when the first output is written. ``directory``: ``path`` itself is a folder the tool writes into, so
    an existing file at ``path`` is a problem too (a tool that replaces its output checks only the parents).
    """
    absolute = path.expanduser().absolute()
    ancestor = absolute if directory else absolute.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{option} {path}: {ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{option} {path}: {ancestor} is not writable"
    return None


def number_problem(args: argparse.Namespace, minimum: float, *options: str, exclusive: bool = False) -> str | None:
    """The first of ``options`` (e.g. "--duration") whose value is not a finite number >= (or >) ``minimum``."""
    for option in options:
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if not math.isfinite(value) or value < minimum or (exclusive and value == minimum):
            relation = ">" if exclusive else ">="
            return f"{option} must be a finite number {relation} {minimum:g}, got {value:g}"
    return None
