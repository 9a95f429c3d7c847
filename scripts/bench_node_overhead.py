#!/usr/bin/env python3
"""Per-cycle overhead of alpamayo_node, model excluded: what the node adds around one inference.

One cycle = what happens between message arrival and publishing for one 10 Hz planning tick:
  buffer 7 camera frames + 5 odometry samples (subscription callbacks), select a synchronized sample, build the ego
  history, convert + resize the frames the model consumes (rgb8 1920x1080 -> the model's input size; each frame is
  converted once and cached, so a tick converts the 4 new frames of the model's 4 cameras), run the consistency
  monitor and build Path, odom Path, ChainOfCausation and MarkerArray.
Messages are real sensor_msgs/Image objects built before timing (deserialisation is DDS's cost, not the node's).

    python scripts/bench_node_overhead.py [--cycles 300] [--size 320x576] [--no-cache] [--all-cameras]

Prints p50 / p90 / p99 / max in milliseconds, per stage and in total.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image

from alpamayo_ros.core.builders import (
    build_chain_of_causation,
    build_markers,
    build_odom_path,
    build_path,
    ns_from_stamp,
    stamp_from_ns,
)
from alpamayo_ros.core.decisions import check_consistency
from alpamayo_ros.core.ego_history import EgoHistoryResult, OdometryBuffer, build_ego_history, make_odom_sample
from alpamayo_ros.core.images import raw_to_rgb
from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC, CAMERA_NAMES
from alpamayo_ros.core.sync import FrameEntry, FrameSynchronizer, SyncConfig, SyncedSample, assemble_images
from alpamayo_ros.core.types import ModelInfo, Prediction, StageTimings

STEP_NS = 100_000_000


def decode(msg: Image) -> np.ndarray:
    return raw_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def make_images(pool: int, height: int, width: int) -> dict[str, list[Image]]:
    rng = np.random.default_rng(0)
    out: dict[str, list[Image]] = {}
    for cam in CAMERA_NAMES:
        msgs = []
        for _ in range(pool):
            pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
            msg.data = pixels.tobytes()
            msgs.append(msg)
        out[cam] = msgs
    return out


def fake_prediction(speed: float) -> Prediction:
    t = (np.arange(64) + 1) * 0.1
    xyz = np.stack([speed * t, np.zeros(64), np.zeros(64)], axis=1)[None]
    rot = np.broadcast_to(np.eye(3), (1, 64, 3, 3)).copy()
    text = "The lead vehicle keeps its distance, so keep the current speed and stay in the lane."
    return Prediction(xyz, rot, (text,), (20,), (False,), StageTimings())


def percentile_row(name: str, values: list[float]) -> str:
    arr = np.asarray(values)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return f"{name:<22} p50 {p50:7.2f}  p90 {p90:7.2f}  p99 {p99:7.2f}  max {arr.max():7.2f}  ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--size", default="320x576", help="model input HxW, or 'native' (no resize)")
    parser.add_argument("--camera-size", default="1080x1920", help="camera HxW")
    parser.add_argument("--no-cache", action="store_true", help="convert every frame of the sample on every cycle")
    parser.add_argument("--all-cameras", action="store_true", help="the model consumes all seven cameras")
    parser.add_argument("--cv-threads", type=int, default=-1, help="cv2.setNumThreads (-1: OpenCV's default)")
    args = parser.parse_args()
    if args.cv_threads >= 0:
        cv2.setNumThreads(args.cv_threads)
    size_hw = None if args.size == "native" else tuple(int(v) for v in args.size.split("x"))
    cam_h, cam_w = (int(v) for v in args.camera_size.split("x"))
    model_cams = CAMERA_NAMES if args.all_cameras else ALPAMAYO_R1_CAMERAS
    info = ModelInfo("bench", "0", model_cams, ALPAMAYO_R1_FRAME_OFFSETS_SEC, size_hw)  # type: ignore[arg-type]

    print(f"building {len(CAMERA_NAMES)} x 6 rgb8 {cam_w}x{cam_h} messages ...", flush=True)
    images = make_images(6, cam_h, cam_w)
    sync = FrameSynchronizer(SyncConfig(CAMERA_NAMES, tuple(model_cams), ALPAMAYO_R1_FRAME_OFFSETS_SEC))
    odom = OdometryBuffer()
    stages: dict[str, list[float]] = {k: [] for k in ("callbacks", "select+ego", "convert+resize", "build", "total")}
    t_ns = 1_000 * 1_000_000_000
    speed = 10.0
    # 2 s of odometry history before the first cycle
    for k in range(100):
        stamp = t_ns - 2_000_000_000 + k * 20_000_000
        odom.add(make_odom_sample(stamp, (speed * stamp / 1e9, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)), "odom")
    for cycle in range(args.warmup + args.cycles):
        t_ns += STEP_NS
        stamp_msg = stamp_from_ns(t_ns)
        start = time.perf_counter()
        # subscription callbacks: odometry at 50 Hz, one frame per camera (what the node does per message)
        for k in range(5):
            s = t_ns - STEP_NS + (k + 1) * 20_000_000
            o = Odometry()
            o.header.stamp = stamp_from_ns(s)
            o.pose.pose.position.x = speed * s / 1e9
            o.pose.pose.orientation.w = 1.0
            p, q = o.pose.pose.position, o.pose.pose.orientation
            odom.add(make_odom_sample(ns_from_stamp(o.header.stamp), (p.x, p.y, p.z), (q.x, q.y, q.z, q.w)), "odom")
        for cam in CAMERA_NAMES:
            msg = images[cam][cycle % 6]
            msg.header.stamp = stamp_msg
            sync.add(cam, FrameEntry(ns_from_stamp(msg.header.stamp), msg, (msg.width, msg.height)))
        t1 = time.perf_counter()
        sample = sync.select()
        assert isinstance(sample, SyncedSample) or cycle < 4, sample
        if not isinstance(sample, SyncedSample):
            continue
        ego = build_ego_history(odom, sample.t0_ns)
        assert isinstance(ego, EgoHistoryResult), ego
        t2 = time.perf_counter()
        if args.no_cache:
            for entries in sample.frames.values():
                for e in entries:
                    if e is not None:
                        e._cache = None
        frames = assemble_images(sample, decode, info.image_size_hw)
        assert all(f.shape[0] == 4 for f in frames.values())
        t3 = time.perf_counter()
        pred = fake_prediction(speed)
        report = check_consistency(pred.reasoning[0], pred.xyz[0], ego.speed_mps)
        build_path(pred.xyz[0], pred.rotation[0], sample.t0_ns, "base_link")
        build_odom_path(pred.xyz[0], pred.rotation[0], ego.t0_pose, sample.t0_ns)
        build_chain_of_causation(
            sample.t0_ns, frame_id="base_link", prediction=pred, sample_index=0, report=report, info=info
        )
        build_markers(pred.xyz[0], sample.t0_ns, "base_link", text=pred.reasoning[0], agreement=int(report.agreement))
        t4 = time.perf_counter()
        if cycle >= args.warmup:
            for key, value in (
                ("callbacks", t1 - start),
                ("select+ego", t2 - t1),
                ("convert+resize", t3 - t2),
                ("build", t4 - t3),
                ("total", t4 - start),
            ):
                stages[key].append(value * 1e3)
    print(
        f"{args.cycles} cycles; 7 cameras rgb8 {cam_w}x{cam_h}; model consumes {len(model_cams)} cameras x 4 frames; "
        f"input size {args.size}; {'no cache' if args.no_cache else 'each frame converted once'}"
    )
    for key, values in stages.items():
        print(percentile_row(key, values))
    p99 = float(np.percentile(stages["total"], 99))
    print(f"p99 total {p99:.2f} ms: {'within' if p99 < 15.0 else 'OVER'} the 15 ms target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
