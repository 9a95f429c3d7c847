"""``alpamayo-ros sim`` on the fleet path: the suite's scenarios and seeds as units on this process or Ray workers.

The same flags as ``evaluate`` (``flags``), gates over the simulation's metric names (``gates.SIM_METRICS``), and the
outputs of a single-machine run, merged in suite order (``rollout_results``).
"""

from __future__ import annotations

import argparse

from alpamayo_ros.core.params import NodeParams
from alpamayo_ros.tools.fleet.command import FleetJob, load_baseline, refuse, run_job
from alpamayo_ros.tools.fleet.flags import flag_problem
from alpamayo_ros.tools.fleet.gates import SIM_METRICS, GateError, parse_gates
from alpamayo_ros.tools.fleet.inputs import InputError
from alpamayo_ros.tools.fleet.rollout_results import RolloutResults
from alpamayo_ros.tools.fleet.rollouts import RolloutSet, SimWorkerLoader
from alpamayo_ros.tools.fleet.ros_domains import own_domain
from alpamayo_ros.tools.fleet.units import WorkUnit

PROG = "alpamayo-ros sim"


def run_sim_fleet(
    args: argparse.Namespace,
    params: NodeParams,
    scenarios: tuple[str, ...],
    seeds: tuple[int, ...],
    drivers: tuple[str, ...],
) -> int:
    """Every (scenario, seed) as a unit on the chosen executor; the merged outputs; the gates."""
    try:
        gates = parse_gates(args.fail_on, SIM_METRICS)
        if args.attach and args.executor == "ray":
            return refuse(PROG, "--attach drives one running node: not with --executor ray (each worker starts one)")
        problem = flag_problem(args, gates)
        if problem is not None:
            return refuse(PROG, problem)
        baseline = load_baseline(args.baseline, "rollouts", "a simulation") if args.baseline is not None else None
    except (InputError, GateError) as exc:
        return refuse(PROG, str(exc))
    on_workers = argparse.Namespace(**{**vars(args), "out": args.out.resolve()})
    rollout_sets = [RolloutSet(name, seed, drivers, on_workers) for name in scenarios for seed in seeds]
    units: list[WorkUnit] = [*rollout_sets]
    loader = SimWorkerLoader(
        params,
        on_workers,
        needs_node="node" in drivers,
        isolate_domain=args.executor == "ray",
        user_domain=own_domain(),
    )
    job = FleetJob(PROG, "scenario", units, loader, RolloutResults(args.out, rollout_sets), SIM_METRICS)
    return run_job(args, job, gates, baseline)
