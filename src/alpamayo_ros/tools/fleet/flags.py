"""The fleet flags of ``evaluate`` and ``sim``: one definition, the checks they share, the executor they choose.

Kept free of the executors' imports so that building a command's parser stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alpamayo_ros.tools.fleet.executor import Executor
    from alpamayo_ros.tools.fleet.gates import Gate


def add_fleet_arguments(parser: argparse.ArgumentParser, what: str, gate_example: str) -> None:
    """``what``: the group's description (what the work units are); ``gate_example``: a --fail-on for the help."""
    group = parser.add_argument_group("fleet", what)
    group.add_argument(
        "--executor", choices=("serial", "ray"), default=None, help="serial: this process (default); ray: Ray workers"
    )
    group.add_argument(
        "--address", default=None, help="Ray cluster to join (auto, ray://host:10001); default: local Ray on 127.0.0.1"
    )
    group.add_argument("--workers", type=int, default=None, help="Ray workers (default: the cluster's CPUs or GPUs)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each Ray worker holds (fractions ok)")
    group.add_argument("--retries", type=int, default=None, help="extra attempts for a unit that failed (default 1)")
    group.add_argument("--task-timeout", type=float, default=None, help="seconds one unit may take (default: none)")
    group.add_argument("--baseline", type=Path, default=None, help="metrics.json of an earlier run to compare with")
    group.add_argument(
        "--fail-on", default="", help=f"gates, e.g. {gate_example} (exit 1 when one fails)".replace("%", "%%")
    )
    group.add_argument("--no-progress", action="store_true", help="no progress line")


DEFAULT_RETRIES = 1


def fleet_flags_given(args: argparse.Namespace) -> bool:
    """True when a fleet flag is given (any but --no-progress): the run takes the fleet path, whose checks refuse
    a flag that does not fit, rather than a single-machine run ignoring it."""
    given = (args.executor, args.address, args.workers, args.retries, args.task_timeout, args.baseline)
    return any(v is not None for v in given) or bool(args.gpus_per_worker) or bool(args.fail_on)


def retries(args: argparse.Namespace) -> int:
    return DEFAULT_RETRIES if args.retries is None else int(args.retries)


def flag_problem(args: argparse.Namespace, gates: list[Gate]) -> str | None:
    """What is wrong with the fleet flags of either command (one line), or None."""
    if retries(args) < 0 or (args.workers is not None and args.workers < 1) or args.gpus_per_worker < 0:
        return "--retries must be >= 0, --workers >= 1, --gpus-per-worker >= 0"
    if args.task_timeout is not None and args.task_timeout <= 0:
        return f"--task-timeout {args.task_timeout}: must be > 0 seconds"
    if args.executor != "ray" and (args.address or args.workers or args.gpus_per_worker):
        return "--address, --workers and --gpus-per-worker need --executor ray"
    if args.baseline is None and any(g.op == "+" for g in gates):
        return f"--fail-on {','.join(g.text for g in gates if g.op == '+')}: a change needs --baseline"
    if args.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return "--executor ray needs Ray: pip install -r requirements/fleet.txt (or the package's [fleet] extra)"
    return None


def make_executor(args: argparse.Namespace) -> Executor:
    from alpamayo_ros.tools.fleet.executor import SerialExecutor

    timeout = args.task_timeout
    if args.executor != "ray":
        return SerialExecutor(retries=retries(args), task_timeout_sec=timeout)
    from alpamayo_ros.tools.fleet.ray_executor import RayExecutor

    return RayExecutor(
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        address=args.address,
        retries=retries(args),
        task_timeout_sec=timeout,
    )
