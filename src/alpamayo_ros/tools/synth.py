"""`alpamayo-ros synth`: write a procedurally generated seven-camera scenario as a rosbag2 bag.

Besides the bag's own files, ``scenario.json`` in the bag directory records what was generated (scenario,
seed, image size, scene parameters, rig mounting poses, topics) so the evaluation can draw into the right camera
model. Scene parameters come from a named distribution (``--distribution``) and can be fixed one by one
(``--set lighting=night --set ego_speed=19``); ``--describe`` prints them, one per line with units, and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alpamayo_ros.sim import SCENARIOS, ParamError, describe, generate, parse_overrides
from alpamayo_ros.sim.generate import EgoSample, GeneratedScenario
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.cli_checks import output_path_problem
from alpamayo_ros.tools.scene_options import add_scene_arguments

SIDECAR = "scenario.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", choices=SCENARIOS, default="lead_vehicle_braking")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=20.0, help="bag duration (s); ground truth looks 6.4 s beyond")
    parser.add_argument("--out", type=Path, help="bag directory to create (required unless --describe)")
    add_scene_arguments(
        parser, "fix one scene parameter (repeatable), e.g. lighting=night, ego_speed=19; see docs/scenarios.md"
    )
    parser.add_argument("--describe", action="store_true", help="print the scene parameters and exit")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--compressed", action="store_true", help="JPEG sensor_msgs/CompressedImage instead of rgb8")
    parser.add_argument("--storage", choices=bagio.STORAGES, default="mcap")
    parser.add_argument("--clock", action="store_true", help="also write /clock at 100 Hz")
    parser.add_argument("--force", action="store_true", help="replace an existing bag at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _write_odometry(bag: bagio.BagWriter, o: EgoSample) -> None:
    """One ego pose as /odom and as the odom -> base_link transform on /tf (same stamp, same pose)."""
    bag.write(
        bagio.ODOM_TOPIC,
        bagio.ODOMETRY,
        o.stamp_ns,
        bagio.odometry_msg(o.stamp_ns, o.x, o.y, o.yaw, v_mps=o.v_mps, yaw_rate=o.yaw_rate),
    )
    bag.write(bagio.TF_TOPIC, bagio.TF, o.stamp_ns, bagio.tf_msg(o.stamp_ns, o.x, o.y, o.yaw))


def write_scenario_bag(
    gen: GeneratedScenario,
    out: Path,
    *,
    compressed: bool = False,
    storage: str = "mcap",
    clock: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Render and write every tick; returns the sidecar dict (also written as scenario.json) with timings."""
    from tqdm import tqdm

    cameras = gen.cameras
    odom = list(gen.odometry())
    t_start = time.monotonic()
    render_sec = 0.0
    with bagio.BagWriter(out, storage) as bag:
        odom_i = 0
        bar = tqdm(total=gen.num_ticks, unit="tick", desc=f"synth {gen.scenario.name}", disable=not progress)
        ticks = gen.ticks()
        for _ in range(gen.num_ticks):
            t_r = time.monotonic()
            tick = next(ticks)
            render_sec += time.monotonic() - t_r
            # Odometry up to and including this tick first: a consumer sees the pose before the frames.
            while odom_i < len(odom) and odom[odom_i].stamp_ns <= tick.stamp_ns:
                _write_odometry(bag, odom[odom_i])
                odom_i += 1
            if clock:
                for k in range(10):
                    ns = tick.stamp_ns + k * 10_000_000
                    bag.write(bagio.CLOCK_TOPIC, "rosgraph_msgs/msg/Clock", ns, bagio.clock_msg(ns))
            for cam, rgb in zip(cameras, tick.images, strict=True):
                bag.write(
                    bagio.camera_info_topic(cam.name),
                    bagio.CAMERA_INFO,
                    tick.stamp_ns,
                    bagio.camera_info_msg(tick.stamp_ns, cam.name, cam.width, cam.height, cam.k),
                )
                if compressed:
                    bag.write(
                        bagio.image_topic(cam.name, True),
                        bagio.COMPRESSED,
                        tick.stamp_ns,
                        bagio.compressed_msg(tick.stamp_ns, cam.name, rgb),
                    )
                else:
                    bag.write(
                        bagio.image_topic(cam.name),
                        bagio.IMAGE,
                        tick.stamp_ns,
                        bagio.image_msg(tick.stamp_ns, cam.name, rgb),
                    )
            bag.write(bagio.GT_PATH_TOPIC, bagio.PATH, tick.stamp_ns, bagio.path_msg(tick.stamp_ns, tick.future))
            bag.write(
                bagio.GT_REASONING_TOPIC, bagio.COC, tick.stamp_ns, bagio.reference_coc_msg(tick.stamp_ns, tick.label)
            )
            bar.update(1)
        for o in odom[odom_i:]:
            _write_odometry(bag, o)
        bar.close()
        count = bag.count
    wall = time.monotonic() - t_start
    sc = gen.scenario
    sidecar: dict[str, Any] = {
        "scenario": sc.name,
        "seed": sc.seed,
        "seconds": sc.seconds,
        "description": sc.description,
        "distribution": sc.params.distribution if sc.params is not None else None,
        "params": sc.params.axis_values() if sc.params is not None else None,
        "width": cameras[0].width,
        "height": cameras[0].height,
        "compressed": compressed,
        "storage": storage,
        "ticks": gen.num_ticks,
        "messages": count,
        "rig": {cam.name: asdict(cam.mount) for cam in cameras},
        "topics": {
            "images": {cam.name: bagio.image_topic(cam.name, compressed) for cam in cameras},
            "camera_info": {cam.name: bagio.camera_info_topic(cam.name) for cam in cameras},
            "odometry": bagio.ODOM_TOPIC,
            "tf": bagio.TF_TOPIC,
            "ground_truth_path": bagio.GT_PATH_TOPIC,
            "ground_truth_reasoning": bagio.GT_REASONING_TOPIC,
        },
        "timing": {
            "wall_sec": round(wall, 3),
            "render_sec": round(render_sec, 3),
            "render_rig_fps": round(gen.num_ticks / max(render_sec, 1e-9), 2),
        },
    }
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=2))
    return sidecar


def load_sidecar(bag: Path) -> dict[str, Any] | None:
    path = bag / SIDECAR
    return json.loads(path.read_text()) if path.is_file() else None  # type: ignore[no-any-return]


def run(args: argparse.Namespace) -> int:
    try:  # checks the duration, image size and parameters before anything is written (rendering happens per tick)
        overrides = parse_overrides(args.overrides)
        if args.out is None and not args.describe:
            raise ParamError("--out is required (or --describe to print the scene parameters)")
        gen = generate(
            args.scenario,
            args.seed,
            args.seconds,
            args.width,
            args.height,
            distribution=args.distribution,
            overrides=overrides,
        )
    except ValueError as exc:  # ParamError included
        print(f"alpamayo-ros synth: {exc}", file=sys.stderr)
        return 2
    if args.describe:
        assert gen.scenario.params is not None  # built from parameters
        print("\n".join(describe(gen.scenario.params)))
        print(f"description = {gen.scenario.description}")
        return 0
    out: Path = args.out
    problem = output_path_problem("--out", out)
    if problem is not None:
        print(f"alpamayo-ros synth: {problem}", file=sys.stderr)
        return 2
    if out.exists():
        if not args.force:
            print(f"alpamayo-ros synth: {out} exists (use --force to replace it)", file=sys.stderr)
            return 1
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    info = write_scenario_bag(
        gen, out, compressed=args.compressed, storage=args.storage, clock=args.clock, progress=not args.quiet
    )
    timing = info["timing"]
    print(
        f"wrote {out} ({info['storage']}): {info['scenario']} seed {info['seed']}, {info['ticks']} ticks, "
        f"{info['messages']} messages, {info['width']}x{info['height']}; {gen.scenario.description}. "
        f"render {timing['render_rig_fps']} rig frames/s (7 cameras), total {timing['wall_sec']} s"
    )
    return 0
