"""The scene options `synth` and `sim` share: the distribution the scene parameters are drawn from, and ``--set``.

Both tools build scenes through ``sim.generate``; naming the options once keeps their spelling, choices and
validation the same (docs/scenarios.md documents them for both).
"""

from __future__ import annotations

import argparse
from typing import Any

from alpamayo_ros.sim import DISTRIBUTIONS, parse_overrides
from alpamayo_ros.sim.distributions import Value


def add_scene_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """``--distribution`` (default: ``default``) and the repeatable ``--set KEY=VALUE`` (into ``args.overrides``)."""
    parser.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default="default",
        help="where the scene parameters are drawn from (sim.distributions; docs/scenarios.md)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help)


def scene_overrides(args: argparse.Namespace) -> dict[str, Value]:
    """The scene parameters fixed by ``--set`` (``sim.ParamError`` names a bad one)."""
    return parse_overrides(args.overrides)


def scene_choice(args: argparse.Namespace) -> dict[str, Any]:
    """Where the scenes came from, for a run's record: the distribution and the fixed parameters."""
    return {"distribution": args.distribution, "overrides": scene_overrides(args)}
