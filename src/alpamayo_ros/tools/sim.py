"""`alpamayo-ros sim`: closed-loop simulation. The node drives, the world answers.

    alpamayo-ros sim --scenario pedestrian_crossing --seed 1000 [--driver node expert constant_velocity]
        [--transport dds|inprocess] [--params-file config/alpamayo.yaml] [--realtime] [--attach]
    alpamayo-ros sim --suite default          # every scenario kind, seeds 1000-1003, the three drivers
    alpamayo-ros sim --suite default --distribution shifted [--set lighting=night ...]   # other scenes
    alpamayo-ros sim --suite default --executor ray [--address auto] [--baseline OLD/metrics.json --fail-on ...]

Each rollout is a ``sim.closed_loop.ClosedLoopWorld`` stepped at 0.1 s: the ``node`` driver is the node's own planning
step (the real ``alpamayo_node`` over DDS in lockstep, or the same tick functions in process), ``expert`` and
``constant_velocity`` are the reference drivers (upper and lower bound). Outputs under ``--out``: a table on stdout,
``metrics.json`` (every rollout's ``sim.metrics`` and per-driver totals), ``junit.xml`` (one test case per rollout:
the scenario's success conditions are its verdict), ``report.html`` (drivers side by side, per rollout a bird's-eye
GIF, time plots and the camera mosaic at the first failure), and per rollout an mcap bag of everything the node was
sent and answered (``alpamayo-ros evaluate`` and RViz replay it). With a fleet flag the rollouts run as units of
``tools.fleet`` (this process or Ray workers) and give the same outputs, plus rows.jsonl and the baseline comparison.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpamayo_ros.core.params import NodeParams, ParamsFileError, load_params_file
from alpamayo_ros.sim import SCENARIOS, ParamError
from alpamayo_ros.tools.cli_checks import output_path_problem
from alpamayo_ros.tools.fleet.flags import add_fleet_arguments, fleet_flags_given
from alpamayo_ros.tools.scene_options import add_scene_arguments, scene_choice, scene_overrides

DRIVERS: tuple[str, ...] = ("node", "expert", "constant_velocity")
SUITES: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "default": (SCENARIOS, (1000, 1001, 1002, 1003)),
    "smoke": (("lead_vehicle_braking", "pedestrian_crossing"), (1000,)),
}
MIN_SECONDS = 2.0  # the 1.5 s warm-up plus a few engaged ticks


@dataclass
class RolloutResult:
    """One finished (or failed) rollout: its metrics as JSON, the driver's extra figures, where its files are."""

    scenario: str
    seed: int
    driver: str
    metrics: dict[str, Any] | None
    error: str = ""
    wall_s: float = 0.0
    sim_s: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.metrics is not None and bool(self.metrics["passed"]) and not self.error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default="pedestrian_crossing", help=f"one of {', '.join(SCENARIOS)}")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--suite", choices=tuple(SUITES), default=None, help="scenarios x seeds instead of one")
    parser.add_argument("--driver", nargs="+", choices=DRIVERS, default=None, help="default: node (suite: all three)")
    parser.add_argument(
        "--transport",
        choices=("dds", "inprocess"),
        default=None,
        help="how the node driver runs (default: dds; inprocess with a fleet flag)",
    )
    parser.add_argument("--params-file", type=Path, default=None, help="node parameter file (the node's defaults)")
    parser.add_argument("--realtime", action="store_true", help="the clock runs at wall speed (DDS): plans age")
    parser.add_argument("--attach", action="store_true", help="use an already running alpamayo_node (DDS)")
    add_scene_arguments(parser, "fix one scene parameter in every rollout (repeatable), as in alpamayo-ros synth")
    parser.add_argument("--seconds", type=float, default=20.0, help="rollout length (s)")
    parser.add_argument("--width", type=int, default=320, help="camera image width (px)")
    parser.add_argument("--height", type=int, default=180, help="camera image height (px)")
    parser.add_argument("--out", type=Path, default=Path("out/sim"))
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds for the node to come up")
    parser.add_argument("--answer-timeout", type=float, default=10.0, help="seconds per plan before it is missed")
    parser.add_argument("--no-report", action="store_true", help="skip the GIFs and plots (faster sweeps)")
    add_fleet_arguments(
        parser,
        "the rollouts on Ray workers (one scenario and seed per task), compared with a baseline run",
        "collision_at_fault:>0,progress:+5%",
    )


def _problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, before anything is loaded or started."""
    if args.suite is None and args.scenario not in SCENARIOS:
        return f"unknown scenario {args.scenario!r}; choose one of {', '.join(SCENARIOS)}"
    if not math.isfinite(args.seconds) or args.seconds < MIN_SECONDS:
        return f"--seconds {args.seconds} is too short: a rollout needs at least {MIN_SECONDS} s (1.5 s warm-up)"
    if args.width < 16 or args.height < 16:
        return f"image size {args.width}x{args.height} is too small (minimum 16x16)"
    if (args.realtime or args.attach) and args.transport == "inprocess":
        return "--realtime and --attach drive the node over DDS: drop --transport inprocess"
    if args.params_file is not None and not args.params_file.is_file():
        return f"--params-file {args.params_file}: no such file"
    try:
        scene_overrides(args)
    except ParamError as exc:
        return str(exc)
    return output_path_problem("--out", args.out, directory=True)


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem is not None:
        print(f"alpamayo-ros sim: {problem}", file=sys.stderr)
        return 2
    try:
        params = load_params_file(args.params_file) if args.params_file is not None else NodeParams()
    except ParamsFileError as exc:
        print(f"alpamayo-ros sim: {exc}", file=sys.stderr)
        return 2
    scenarios, seeds = SUITES[args.suite] if args.suite else ((args.scenario,), (args.seed,))
    drivers = tuple(args.driver or (DRIVERS if args.suite else ("node",)))
    if args.transport is None:  # a fleet's workers drive in process unless DDS is asked for (it costs a node each)
        in_process = fleet_flags_given(args) and not (args.realtime or args.attach)
        args.transport = "inprocess" if in_process else "dds"
    if fleet_flags_given(args):
        from alpamayo_ros.tools.fleet.sim_command import run_sim_fleet

        return run_sim_fleet(args, params, scenarios, seeds, drivers)
    results = run_suite(args, params, scenarios, seeds, drivers)
    from alpamayo_ros.tools.sim_report import format_table, write_outputs

    write_outputs(args.out, results, scene_choice(args))
    print(format_table(results))
    print(
        f"metrics: {args.out / 'metrics.json'}\njunit:   {args.out / 'junit.xml'}\nreport:  {args.out / 'report.html'}"
    )
    if any(r.error for r in results):
        return 1
    return 0


def run_suite(
    args: argparse.Namespace,
    params: NodeParams,
    scenarios: tuple[str, ...],
    seeds: tuple[int, ...],
    drivers: tuple[str, ...],
) -> list[RolloutResult]:
    """Every (scenario, seed, driver) in this process, in suite order (``scenario_rollouts`` for each pair)."""
    from tqdm import tqdm

    total = len(scenarios) * len(seeds) * len(rollout_order(drivers))
    bar = tqdm(total=total, unit="rollout", desc="sim", disable=args.no_progress)
    results: list[RolloutResult] = []
    node = LazyNode(lambda: node_transport(args, params, args.out / "node"))
    try:
        for name in scenarios:
            for seed in seeds:
                for result in scenario_rollouts(args, name, seed, drivers, node=node, bar=bar):
                    results.append(result)
    except KeyboardInterrupt:
        print("\ninterrupted: writing what finished", file=sys.stderr)
    finally:
        bar.close()
        node.close()
    return results


def rollout_order(drivers: tuple[str, ...]) -> tuple[str, ...]:
    """The order a scenario's rollouts run in: the expert first (the others' progress is relative to its)."""
    return ("expert", *(d for d in drivers if d != "expert"))


class LazyNode:
    """The node driver's transport, started on first use and kept for the run (one model load); a node that cannot
    start fails every node rollout with the reason."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self.node: Any = None
        self.error = ""

    def __call__(self) -> tuple[Any, str]:
        """(the transport, "") or (None, why it could not start)."""
        if self.node is None and not self.error:
            try:
                self.node = self._start()
            except Exception as exc:  # a node that cannot start fails every node rollout, with why
                self.error = f"{type(exc).__name__}: {exc}"
        return self.node, self.error

    def close(self) -> None:
        if self.node is not None:
            self.node.close()


def scenario_rollouts(
    args: argparse.Namespace,
    name: str,
    seed: int,
    drivers: tuple[str, ...],
    *,
    node: Callable[[], tuple[Any, str]],
    bar: Any | None,
) -> Iterator[RolloutResult]:
    """The rollouts of one scenario and seed in ``rollout_order``, yielding those of ``drivers`` as they end.

    This is the unit of work of a fleet run too (``tools.fleet.rollouts``): the expert's rollout is needed by the
    others, so the rollouts of one scenario and seed stay together, on one worker, in this order.
    """
    expert_progress: float | None = None
    for driver in rollout_order(drivers):
        if bar is not None:
            bar.set_postfix_str(f"{name} {seed} {driver}")
        transport, node_error = node() if driver == "node" else (None, "")
        if node_error:
            result = RolloutResult(name, seed, driver, None, error=node_error)
        else:
            result = run_one(args, name, seed, driver, node=transport, expert_progress=expert_progress, bar=bar)
        if driver == "expert" and result.metrics is not None:
            expert_progress = float(result.metrics["progress_m"])
        if bar is not None:
            bar.update(1)
        if driver in drivers:
            yield result


def node_transport(args: argparse.Namespace, params: NodeParams, log_dir: Path) -> Any:
    """The node driver's transport (``--transport``); a DDS node writes its log and parameter file to ``log_dir``."""
    if args.transport == "inprocess":
        from alpamayo_ros.runtime.registry import load_model
        from alpamayo_ros.tools.sim_drivers import InProcessNode

        return InProcessNode(params, load_model)
    from alpamayo_ros.tools.sim_dds import DdsNode

    return DdsNode(
        params,
        log_dir=log_dir,
        attach=args.attach,
        startup_timeout_s=args.startup_timeout,
        answer_timeout_s=args.answer_timeout,
        lockstep=not args.realtime,
    )


def run_one(
    args: argparse.Namespace,
    name: str,
    seed: int,
    driver: str,
    *,
    node: Any,
    expert_progress: float | None,
    bar: Any | None,
) -> RolloutResult:
    """One rollout with its bag and report files; a transport failure ends it with the error, metrics kept."""
    from alpamayo_ros.sim.closed_loop import REFERENCE_DRIVERS, ClosedLoopWorld, run_rollout
    from alpamayo_ros.sim.metrics import evaluate_rollout
    from alpamayo_ros.tools.sim_loop import NodeRolloutStats, drive_with_node

    rollout_dir = args.out / "rollouts" / f"{name}_s{seed}_{driver}"
    result = RolloutResult(name, seed, driver, None)
    started = time.perf_counter()
    world = ClosedLoopWorld(
        name,
        seed,
        args.seconds,
        args.width,
        args.height,
        render=driver == "node",
        distribution=args.distribution,
        overrides=scene_overrides(args),
    )
    extra: dict[str, Any] = {}
    try:
        if driver == "node":
            stats = NodeRolloutStats()
            on_tick = None if bar is None else _ticker(bar)
            drive_with_node(world, node, rollout_dir / "bag", stats, realtime=args.realtime, on_tick=on_tick)
            extra = stats.summary()
        else:
            run_rollout(world, REFERENCE_DRIVERS[driver](world))
    except Exception as exc:  # the node died, never answered, or the bag failed: keep what ran
        result.error = f"{type(exc).__name__}: {exc}"
    result.wall_s = time.perf_counter() - started
    rollout = world.rollout(driver, result.wall_s)
    result.sim_s = len(rollout.records) * 0.1
    if any(r.engaged for r in rollout.records):
        metrics = evaluate_rollout(rollout, expert_progress)
        result.metrics = {**metrics.to_dict(), **extra}
        if not args.no_report:
            from alpamayo_ros.tools.sim_report import write_rollout_files

            result.files = write_rollout_files(rollout, metrics, rollout_dir)
    elif not result.error:
        result.error = "the rollout ended during the warm-up"
    return result


def _ticker(bar: Any) -> Callable[[int, int], None]:
    def on_tick(tick: int, total: int) -> None:
        if tick % 10 == 0:
            bar.set_postfix_str(f"tick {tick}/{total}", refresh=True)

    return on_tick


__all__ = ["DRIVERS", "SUITES", "RolloutResult", "add_arguments", "run", "run_suite", "scenario_rollouts"]
