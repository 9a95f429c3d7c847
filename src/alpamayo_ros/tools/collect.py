"""`alpamayo-ros collect`: closed-loop training data. The node drives, the expert labels where it got to (DAgger).

    alpamayo-ros collect [--model DIR] [--params-file NODE.yaml] --distribution default wide --seeds 0-5 \
        --out out/closed_loop_data [--recipe FILE.yaml] [--scenario ...] [--seconds 20]

Each (scenario, seed, distribution) is one rollout of ``sim.closed_loop.ClosedLoopWorld`` driven by the node's own
planning step in this process (``tools.sim_drivers.InProcessNode``: the checkpoint ``--model`` or the parameter file
names), while ``training.closed_loop_samples.ExpertRelabeller`` turns the states it reaches into samples labelled by
the expert planner. Under ``--out``: one npz per rollout in the training cache's format and ``manifest.json`` (who
drove, the sample format, per rollout its sample count and whether the driver passed). A recipe's
``closed_loop_data`` trains on the directory; the sample format follows ``--recipe`` (image size, frame offsets), so
pass the recipe that will train on it. The manifest is rewritten after every rollout and a rerun skips the rollouts
already listed, so an interrupted collection resumes. Seeds from 900 on are held out for validation and evaluation
and are refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from alpamayo_ros.core.params import NodeParams, ParamsFileError, load_params_file
from alpamayo_ros.sim import DISTRIBUTIONS, SCENARIOS
from alpamayo_ros.tools.cli_checks import output_path_problem

FIRST_HELD_OUT_SEED = 900  # training.data.VAL_SEEDS and every evaluation seed lie at or above it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params-file", type=Path, default=None, help="node parameters: the checkpoint that drives")
    parser.add_argument(
        "--model", default=None, help="checkpoint directory or preset that drives (default: the parameter file's)"
    )
    parser.add_argument(
        "--recipe", type=Path, default=None, metavar="FILE.yaml", help="the recipe that will train on it"
    )
    parser.add_argument("--scenario", nargs="+", default=list(SCENARIOS), help="scenario kinds (default: all)")
    parser.add_argument(
        "--distribution", nargs="+", choices=DISTRIBUTIONS, default=["default"], help="scene distributions"
    )
    parser.add_argument(
        "--seeds", default="0-3", metavar="A-B", help=f"seed range, inclusive, below {FIRST_HELD_OUT_SEED}"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="rollout length (s)")
    parser.add_argument("--out", type=Path, default=Path("out/closed_loop_data"))
    parser.add_argument("--quiet", action="store_true")


def parse_seeds(text: str) -> range:
    """``A-B`` (inclusive) or ``A``: training seeds, all below FIRST_HELD_OUT_SEED.

    Raises:
        ValueError: not a range of non-negative integers, empty, or reaching the held-out seeds.
    """
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected A-B or A (non-negative integers)") from None
    if lo < 0 or hi < lo:
        raise ValueError(f"--seeds {text!r}: expected 0 <= A <= B")
    if hi >= FIRST_HELD_OUT_SEED:
        raise ValueError(
            f"--seeds {text!r}: seeds from {FIRST_HELD_OUT_SEED} on are held out for validation and evaluation"
        )
    return range(lo, hi + 1)


def _problem(args: argparse.Namespace) -> str | None:
    unknown = [name for name in args.scenario if name not in SCENARIOS]
    if unknown:
        return f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}"
    try:
        parse_seeds(args.seeds)
    except ValueError as exc:
        return str(exc)
    if not 5.0 <= args.seconds <= 60.0:
        return f"--seconds {args.seconds}: must lie in [5, 60] (1.5 s of warm-up, then the driver)"
    if args.params_file is not None and not args.params_file.is_file():
        return f"--params-file {args.params_file}: no such file"
    return output_path_problem("--out", args.out, directory=True)


def run(args: argparse.Namespace) -> int:
    problem = _problem(args)
    if problem is not None:
        print(f"alpamayo-ros collect: {problem}", file=sys.stderr)
        return 2
    from alpamayo_ros.training.closed_loop_samples import ClosedLoopDataError, read_manifest, sample_format
    from alpamayo_ros.training.data import DataSpec
    from alpamayo_ros.training.recipe import RecipeError, load_recipe

    try:
        params = load_params_file(args.params_file) if args.params_file is not None else NodeParams()
        if args.model is not None:
            params = replace(params, model=replace(params.model, model_path=args.model))
        size = load_recipe(args.recipe).driver_size()
    except (ParamsFileError, RecipeError) as exc:
        print(f"alpamayo-ros collect: {exc}", file=sys.stderr)
        return 2
    spec = DataSpec(image_hw=size.image_hw, frame_offsets_sec=size.frame_offsets_sec)
    done: list[Any] = []
    header: dict[str, Any] | None = None
    if (args.out / "manifest.json").is_file():
        try:
            header, done = read_manifest(args.out)
        except ClosedLoopDataError as exc:
            print(f"alpamayo-ros collect: {exc}", file=sys.stderr)
            return 2
        if header.get("data") != sample_format(spec):
            print(
                f"alpamayo-ros collect: {args.out} holds samples of another format ({header.get('data')}); "
                "choose another --out",
                file=sys.stderr,
            )
            return 2
    return _collect(args, params, spec, header, done)


def _collect(
    args: argparse.Namespace, params: NodeParams, spec: Any, header: dict[str, Any] | None, done: list[Any]
) -> int:
    """Run the rollouts not yet in ``done`` (the manifest ``header`` already there, if any) and write them out."""
    from tqdm import tqdm

    from alpamayo_ros.core.model_setup import ModelSetupError
    from alpamayo_ros.runtime.registry import load_model
    from alpamayo_ros.sim.closed_loop import ClosedLoopWorld
    from alpamayo_ros.sim.metrics import evaluate_rollout
    from alpamayo_ros.tools.sim_drivers import InProcessNode
    from alpamayo_ros.tools.sim_loop import NodeRolloutStats, drive_with_node
    from alpamayo_ros.training.closed_loop_samples import CollectedEpisode, ExpertRelabeller, write_manifest
    from alpamayo_ros.training.data import save_episode

    plan = [
        (name, seed, dist) for dist in args.distribution for name in args.scenario for seed in parse_seeds(args.seeds)
    ]
    have = {(ep.scenario, ep.seed, ep.distribution) for ep in done}
    todo = [job for job in plan if job not in have]
    try:
        node = InProcessNode(params, load_model)
    except ModelSetupError as exc:
        print(f"alpamayo-ros collect: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    info = node.model.info
    driver = {"model": info.name, "version": info.version, "model_path": params.model.model_path}
    collected_by = header.get("driver", {}).get("version") if header is not None else info.version
    if collected_by != info.version:
        node.close()
        print(
            f"alpamayo-ros collect: {args.out} was collected by checkpoint {collected_by}, not {info.version}; "
            "one directory holds one driver's states: choose another --out",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    collected = list(done)
    started = time.perf_counter()
    bar = tqdm(todo, unit="rollout", desc="collect", disable=args.quiet)
    try:
        for name, seed, dist in bar:
            bar.set_postfix_str(f"{name} {seed} {dist}")
            world = ClosedLoopWorld(name, seed, args.seconds, *spec.render_wh, distribution=dist)
            relabel = ExpertRelabeller(world, spec)
            drive_with_node(world, node, None, NodeRolloutStats(), on_observation=relabel.observe)
            data = relabel.episode()
            if data is None:
                continue
            metrics = evaluate_rollout(world.rollout("node"))
            file = f"{name}_s{seed}_{dist}.npz"
            save_episode(args.out / file, data)
            failures = tuple(dict.fromkeys(f.condition for f in metrics.failures))
            collected.append(
                CollectedEpisode(file, name, seed, dist, args.seconds, len(data.texts), metrics.passed, failures)
            )
            write_manifest(args.out, driver, spec, collected)
    finally:
        node.close()
        bar.close()
    samples = sum(ep.samples for ep in collected)
    passed = sum(ep.passed for ep in collected)
    minutes = (time.perf_counter() - started) / 60.0
    print(
        f"collected {len(collected)} rollouts ({passed} passed), {samples} samples in {args.out} "
        f"({len(todo)} new, {minutes:.1f} min)"
    )
    return 0
