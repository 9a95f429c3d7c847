"""Per-rollout report files: a bird's-eye animation, time plots and the metrics, with the failure tick marked.

- birdseye.gif: one frame per tick (Pillow), ego-centred with the ego heading up: the road, the stop line and the
  light's colour, agents (vehicles blue, pedestrians orange), the ego (green), the executed path (white), the plan
  being followed (magenta), and below it the time, speed, the tick's reasoning text and, from the tick a failure
  condition fired on, its name in red.
- timeseries.png: speed, acceleration, gap to the nearest agent and TTC over time (matplotlib, Agg backend), the
  failure ticks as red vertical lines.
- failure_cameras.png: the camera mosaic of the failure tick, when the caller rendered it (failure_frames).
- metrics.json: the metrics (metrics.RolloutMetrics) and the failures.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib as mpl
import numpy as np
import numpy.typing as npt
from PIL import Image

from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.sim.closed_loop import Rollout, TickRecord, ego_corners
from alpamayo_ros.sim.metrics import TTC_HORIZON_S, RolloutMetrics, tick_series

mpl.use("Agg")
import matplotlib.pyplot as plt

VIEW_W, VIEW_H, TEXT_H = 480, 360, 100
PX_PER_M = 5.0
EGO_ROW = 270  # the ego's rear axle sits this many pixels from the top: ~54 m visible ahead, ~18 m behind
COLORS = {
    "grass": (60, 95, 50),
    "road": (90, 90, 95),
    "paint": (230, 230, 225),
    "vehicle": (60, 110, 220),
    "pedestrian": (240, 150, 40),
    "ego": (40, 200, 80),
    "path": (255, 255, 255),
    "plan": (230, 60, 230),
    "fail": (240, 40, 40),
    "text": (235, 235, 235),
}
LIGHT_COLORS = {"green": (40, 220, 90), "yellow": (250, 200, 0), "red": (250, 40, 30)}


def _to_px(rec: TickRecord, xy: FloatArray) -> npt.NDArray[np.int32]:
    """World (N, 2) -> pixel (N, 2) int32 in the ego-centred, heading-up view of the record."""
    c, s = math.cos(rec.yaw), math.sin(rec.yaw)
    dx, dy = xy[:, 0] - rec.x, xy[:, 1] - rec.y
    fwd, left = c * dx + s * dy, -s * dx + c * dy
    px = np.stack([VIEW_W / 2 - left * PX_PER_M, EGO_ROW - fwd * PX_PER_M], axis=1)
    return np.round(px).astype(np.int32)


def birdseye_frame(rollout: Rollout, k: int, failure: str = "") -> UInt8Array:
    """The bird's-eye frame of record k (RGB, (VIEW_H + TEXT_H, VIEW_W, 3))."""
    rec = rollout.records[k]
    img = np.zeros((VIEW_H + TEXT_H, VIEW_W, 3), np.uint8)
    img[:VIEW_H] = COLORS["grass"]
    view = img[:VIEW_H]
    road, lay = rollout.road, rollout.layout
    s0, s1 = max(road.s_min, rec.s_m - 30.0), min(road.s_max, rec.s_m + 80.0)
    cv2.fillPoly(view, [_to_px(rec, road.strip(s0, s1, lay.right_edge_d, lay.left_edge_d))], COLORS["road"])
    ss = np.arange(s0, s1, 1.0)
    for d, dashed in ((lay.right_edge_d, False), (lay.centre_line_d, True), (lay.left_edge_d, False)):
        x, y = road.to_world(ss, np.full(ss.size, d))
        pts = _to_px(rec, np.stack([x, y], axis=1))
        if dashed:
            for i in range(0, len(pts) - 3, 9):
                cv2.line(view, tuple(pts[i]), tuple(pts[i + 3]), COLORS["paint"], 1)
        else:
            cv2.polylines(view, [pts], False, COLORS["paint"], 1)
    if rollout.light is not None:
        x, y = road.to_world(np.full(2, rollout.light.s_stop_m), np.array([lay.right_edge_d, lay.centre_line_d]))
        light = LIGHT_COLORS.get(rec.light_state, COLORS["paint"])
        cv2.polylines(view, [_to_px(rec, np.stack([x, y], axis=1))], False, light, 3)
        cv2.circle(view, (20, 20), 10, light, -1)
    for agent in rec.agents:
        cv2.fillPoly(view, [_to_px(rec, agent.corners())], COLORS.get(agent.kind, COLORS["vehicle"]))
    path = np.array([[r.x, r.y] for r in rollout.records[: k + 1]])
    cv2.polylines(view, [_to_px(rec, path)], False, COLORS["path"], 1)
    if rec.plan_world is not None:
        cv2.polylines(view, [_to_px(rec, rec.plan_world[:, :2])], False, COLORS["plan"], 2)
    cv2.fillPoly(view, [_to_px(rec, ego_corners(rec.x, rec.y, rec.yaw))], COLORS["ego"])
    status = f"t {rec.t_s:5.1f} s  v {rec.v_mps:5.1f} m/s  a {rec.accel_mps2:+5.1f} m/s^2"
    status += "" if rec.engaged else "  (warm-up)"
    status += "  STALE PLAN" if rec.stale else ""
    lines = [status, *textwrap.wrap(rec.reasoning or "(no reasoning)", 72)[:3]]
    if failure:
        lines.append(f"FAILED: {failure}")
    for i, line in enumerate(lines):
        color = COLORS["fail"] if line.startswith("FAILED") else COLORS["text"]
        cv2.putText(img, line, (8, VIEW_H + 18 + 19 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, color, 1, cv2.LINE_AA)
    return img


def write_birdseye_gif(rollout: Rollout, metrics: RolloutMetrics, path: Path, every: int = 1) -> None:
    """The bird's-eye animation, one frame per `every` ticks at real time."""
    fired = sorted((f.tick, f.condition) for f in metrics.failures)
    frames = []
    for k in range(0, len(rollout.records), every):
        failure = ", ".join(name for tick, name in fired if tick <= rollout.records[k].tick)
        frames.append(Image.fromarray(birdseye_frame(rollout, k, failure)).quantize(colors=64))
    if not frames:
        raise ValueError("a rollout without ticks has no animation")
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(100 * every), loop=0)


def write_time_plots(rollout: Rollout, metrics: RolloutMetrics, path: Path) -> None:
    """Speed, acceleration, gap to the nearest agent and TTC against time, failures marked."""
    series = tick_series(rollout)
    fig, axes = plt.subplots(4, 1, figsize=(8, 8), sharex=True)
    gap = np.minimum(series.gap_m, 50.0)
    ttc = np.minimum(series.ttc_s, TTC_HORIZON_S)
    panels = (
        (series.v_mps, "speed (m/s)"),
        (series.accel_mps2, "accel (m/s^2)"),
        (gap, "gap to nearest (m, <=50)"),
        (ttc, f"TTC (s, <={TTC_HORIZON_S:.0f})"),
    )
    for ax, (values, label) in zip(axes, panels, strict=True):
        ax.plot(series.t_s, values)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        for failure in metrics.failures:
            ax.axvline(failure.t_s, color="red", linestyle="--")
    axes[-1].set_xlabel("time (s)")
    verdict = "PASS" if metrics.passed else "FAIL: " + ", ".join(f.condition for f in metrics.failures)
    fig.suptitle(
        f"{rollout.scenario} seed {rollout.seed}, {rollout.driver}: score {metrics.scene_score:.2f}, {verdict}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def camera_mosaic(frames: Sequence[UInt8Array], columns: int = 4) -> UInt8Array:
    """Frames (equal size, rig order) tiled row by row, blank tiles filling the last row."""
    h, w = frames[0].shape[:2]
    rows = math.ceil(len(frames) / columns)
    out = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = frame
    return out


def write_rollout_report(
    rollout: Rollout, metrics: RolloutMetrics, out_dir: Path, failure_frames: Sequence[UInt8Array] = ()
) -> Path:
    """Write the report files of one rollout into out_dir (created); returns out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_birdseye_gif(rollout, metrics, out_dir / "birdseye.gif")
    write_time_plots(rollout, metrics, out_dir / "timeseries.png")
    if failure_frames:
        Image.fromarray(camera_mosaic(failure_frames)).save(out_dir / "failure_cameras.png")
    (out_dir / "metrics.json").write_text(json.dumps(metrics.to_dict(), indent=1))
    return out_dir
