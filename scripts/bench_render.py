#!/usr/bin/env python3
"""Render throughput of the scenario generator: milliseconds per seven-camera frame at several image sizes.

Usage: python scripts/bench_render.py [--sizes 1920x1080 960x540] [--frames 20] [--scenario red_light_stop_line]
Prints one line per size (table setup time, ms per rig frame, rig frames/s, images/s). CPU only, single process.
"""

from __future__ import annotations

import argparse
import time

from alpamayo_ros.sim import SCENARIOS, generate
from alpamayo_ros.sim.render import Renderer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "960x540", "160x90"])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--scenario", choices=SCENARIOS, default="red_light_stop_line")
    args = parser.parse_args()
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        gen = generate(args.scenario, 1, args.frames / 10 + 2.0, width, height)
        started = time.perf_counter()
        renderer = Renderer(gen.scenario, gen.cameras)
        setup = time.perf_counter() - started
        tr = gen.track
        started = time.perf_counter()
        for k in range(args.frames):
            i = 100 + 10 * k
            renderer.render(float(tr.t[i]), float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i]))
        per_frame = (time.perf_counter() - started) / args.frames
        print(
            f"{width}x{height}: setup {setup:.2f} s, {per_frame * 1e3:.0f} ms per 7-camera frame, "
            f"{1 / per_frame:.1f} rig frames/s, {7 / per_frame:.0f} images/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
