"""The evaluation's HTML report: summary table against the constant-velocity baseline, plots, and per tick the
camera mosaic, the plan drawn into the front camera and a bird's-eye view with the ground truth, and the reasoning.

Self-contained: one report.html plus PNG/SVG files in the same directory (open it from disk, no server, no JS).
Drawing reuses the node's overlay (core.overlay) for the front-camera picture.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from alpamayo_ros.core.decisions import Agreement, Decision
from alpamayo_ros.core.overlay import PinholeCamera, draw_overlay, project
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.types import FloatArray, UInt8Array
from alpamayo_ros.sim.rig import RIG_MOUNTS, RigCamera

if TYPE_CHECKING:
    from alpamayo_ros.tools.results import BagEvaluation, TickResult

OVERLAY_CAMERA = "camera_front_wide_120fov"
GT_RGB = (230, 40, 230)  # magenta: the node's overlay colours the plan by agreement (green/red/amber)
PRED_RGB = (60, 140, 255)
BASE_RGB = (170, 170, 170)
# Mosaic layout: the rig as seen from above (front row, middle row, rear row).
MOSAIC_GRID = (
    ("camera_cross_left_120fov", "camera_front_wide_120fov", "camera_cross_right_120fov"),
    ("camera_rear_left_70fov", "camera_front_tele_30fov", "camera_rear_right_70fov"),
    (None, "camera_rear_tele_30fov", None),
)


def _write_png(path: Path, rgb: UInt8Array, quality: int = 85) -> None:
    if path.suffix == ".jpg":
        cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def mosaic(frames: dict[str, UInt8Array]) -> UInt8Array | None:
    if not frames:
        return None
    h, w = next(iter(frames.values())).shape[:2]
    rows = []
    for row in MOSAIC_GRID:
        tiles = []
        for cam in row:
            tile = np.zeros((h, w, 3), np.uint8)
            if cam is not None and cam in frames and frames[cam].shape[:2] == (h, w):
                tile[:] = frames[cam]
                cv2.putText(
                    tile,
                    cam.replace("camera_", ""),
                    (4, 14),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4,
                    (255, 255, 0),
                    1,
                    cv2.LINE_AA,
                )
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def bev(tick: TickResult, size_px: int = 360) -> UInt8Array:
    """Bird's-eye view in the t0 ego frame (x up, y left): ground truth, samples, plan, baseline; 10 m grid."""
    img = np.full((size_px, size_px, 3), 245, np.uint8)
    pts = [tick.gt_xy, tick.baseline_xy, *tick.pred_xy]
    reach = max(20.0, float(max(np.max(np.abs(p)) for p in pts)) * 1.1)
    reach = min(reach, 120.0)
    scale = size_px / (1.2 * reach)
    origin = np.array([size_px / 2, size_px * 0.88])

    def to_px(xy: FloatArray) -> np.ndarray:  # type: ignore[type-arg]
        return np.stack([origin[0] - xy[:, 1] * scale, origin[1] - xy[:, 0] * scale], 1).round().astype(np.int32)

    for m in range(-120, 130, 10):
        for a, b in (((m, -200), (m, 200)), ((-200, m), (200, m))):
            p = to_px(np.array([a, b], dtype=np.float64))
            cv2.line(img, tuple(p[0]), tuple(p[1]), (225, 225, 225), 1)
    for xy, color, width in (
        (tick.baseline_xy, BASE_RGB, 1),
        *((s, (150, 190, 255), 1) for s in tick.pred_xy[1:]),
        (tick.gt_xy, GT_RGB, 4),
        (tick.pred_xy[0], PRED_RGB, 2),
    ):
        cv2.polylines(img, [to_px(np.vstack([[0.0, 0.0], xy]))], False, color, width, cv2.LINE_AA)
    ego = to_px(np.array([[3.8, 0.95], [3.8, -0.95], [-1.0, -0.95], [-1.0, 0.95]]))
    cv2.fillConvexPoly(img, ego, (60, 60, 60), cv2.LINE_AA)
    cv2.putText(
        img,
        f"grid 10 m  v={tick.speed_mps:.1f} m/s",
        (6, 16),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return img


def _front_camera(ev: BagEvaluation, width: int, height: int) -> PinholeCamera | None:
    """The overlay camera from the bag's CameraInfo and the synthetic rig's mount (sidecar, else defaults)."""
    if OVERLAY_CAMERA not in ev.camera_info:
        return None
    k, w, h = ev.camera_info[OVERLAY_CAMERA]
    mount = (ev.sidecar or {}).get("rig", {}).get(OVERLAY_CAMERA)
    if (w, h) != (width, height):
        return None
    if mount is None:  # the synthetic rig's own camera model
        return RigCamera(RIG_MOUNTS[OVERLAY_CAMERA], w, h).pinhole()
    return PinholeCamera.from_fields(
        k,
        w,
        h,
        [mount["x_m"], mount["y_m"], mount["z_m"]],
        [0.0, math.radians(mount["pitch_deg"]), math.radians(mount["yaw_deg"])],
    )


def front_overlay(ev: BagEvaluation, tick: TickResult, max_width: int = 640) -> UInt8Array | None:
    """The node's overlay picture (plan + reasoning), with the ground truth drawn underneath in green."""
    if tick.overlay_rgb is None:
        return None
    rgb = tick.overlay_rgb.copy()
    h, w = rgb.shape[:2]
    cam = _front_camera(ev, w, h)
    if cam is not None:
        gt3 = np.column_stack([tick.gt_xy, np.zeros(len(tick.gt_xy))])
        uv, valid = project(cam, gt3)
        poly = np.round(uv[valid & np.all(np.abs(uv) < 1e5, axis=1)]).astype(np.int32)
        if len(poly) >= 2:
            cv2.polylines(rgb, [poly.reshape(-1, 1, 2)], False, GT_RGB, max(2, w // 240), cv2.LINE_AA)
    xyz = np.column_stack([tick.pred_xy[0], np.zeros(tick.pred_xy.shape[1])])
    return draw_overlay(
        rgb, cam, xyz, tick.reasoning or "(no reasoning)", agreement=int(tick.agreement), max_width_px=max_width
    )


def svg_lines(
    series: list[tuple[str, str, list[float], list[float]]],
    title: str,
    y_label: str,
    width: int = 640,
    height: int = 220,
) -> str:
    """A small line plot as inline SVG: series = (name, colour, x, y)."""
    xs = [x for _, _, sx, _ in series for x in sx]
    ys = [y for _, _, _, sy in series for y in sy if math.isfinite(y)]
    if not xs or not ys:
        return ""
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = 0.0, max(ys) * 1.1 if max(ys) > 0 else 1.0
    pl, pr, pt, pb = 48, 10, 24, 28

    def sx(x: float) -> float:
        return pl + (x - x0) / (x1 - x0) * (width - pl - pr)

    def sy(y: float) -> float:
        return height - pb - (y - y0) / (y1 - y0) * (height - pt - pb)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="plot">',
        f'<text x="{pl}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for k in range(5):
        y = y0 + (y1 - y0) * k / 4
        parts.append(
            f'<line x1="{pl}" x2="{width - pr}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>'
            f'<text x="4" y="{sy(y) + 4:.1f}" font-size="10">{y:.1f}</text>'
        )
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height - 6}" font-size="10">time in bag (s)</text>'
        f'<text x="4" y="{pt - 6}" font-size="10">{html.escape(y_label)}</text>'
    )
    for i, (name, colour, xs_i, ys_i) in enumerate(series):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs_i, ys_i, strict=True) if math.isfinite(y))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{pts}"/>')
        parts.append(
            f'<text x="{width - pr - 150}" y="{pt + 14 * i + 4}" font-size="11" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _dec(d: Decision | None) -> str:
    if d is None:
        return "-"
    return f"{d.longitudinal.name.lower()} / {d.lateral.name.lower()}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}.tick{border-top:2px solid #888;margin-top:18px;padding-top:8px}
.row{display:flex;gap:8px;flex-wrap:wrap;align-items:flex-start}img{border:1px solid #ccc}
.agree{color:#080}.disagree{color:#c00}.unknown{color:#a80}
.warn{background:#fff3cd;padding:6px;border:1px solid #e0c060}
.small{font-size:12px;color:#555}"""


def write_report(out: Path, summary: dict[str, Any], evals: list[BagEvaluation]) -> Path:
    """Write report.html (+ images under out/img) and return its path."""
    img_dir = out / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    model = summary["model"]
    m, b = summary.get("model_metrics") or {}, summary.get("baseline_metrics") or {}
    title = f"Open-loop evaluation: {model.get('name', model.get('source', 'model'))}"
    h: list[str] = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    if model.get("untrained") or "untrained" in str(model.get("name", "")) or model.get("name") == "test-policy":
        h.append(
            "<p class='warn'>This model is untrained or a test double: its trajectories and reasoning are not "
            "driving behaviour. The figures show the pipeline works, not that the model drives.</p>"
        )
    h.append("<p class='small'>" + html.escape(", ".join(f"{k}: {v}" for k, v in model.items())) + "</p>")
    h.append(
        "<table><tr><th class='l'>bag</th><th>scenario</th><th>seed</th><th>anchor frames</th><th>scored</th></tr>"
    )
    for bag in summary["bags"]:
        h.append(
            f"<tr><td class='l'>{html.escape(bag['bag'])}</td><td>{bag['scenario']}</td><td>{bag['seed']}</td>"
            f"<td>{bag['anchor_frames']}</td><td>{bag['planned_ticks']}</td></tr>"
        )
    h.append("</table>")
    skipped = summary["ticks"]["skipped"]
    if skipped:
        h.append(
            "<p class='small'>not scored: " + html.escape(", ".join(f"{k}: {v}" for k, v in skipped.items())) + "</p>"
        )

    h.append("<h2>Trajectory error (XY, metres; mean over ticks)</h2>")
    if m:
        keys = list(m["ade"])
        h.append("<table><tr><th class='l'>metric</th>" + "".join(f"<th>@{k}</th>" for k in keys) + "</tr>")
        for name, table, label in (
            ("ade", m, "ADE model"),
            ("ade", b, "ADE constant velocity"),
            ("min_ade", m, "minADE model"),
            ("fde", m, "FDE model"),
            ("fde", b, "FDE constant velocity"),
            ("min_fde", m, "minFDE model"),
        ):
            h.append(
                f"<tr><td class='l'>{label}</td>" + "".join(f"<td>{table[name][k]:.2f}</td>" for k in keys) + "</tr>"
            )
        h.append("</table>")
        h.append(
            f"<p class='small'>Baseline: {html.escape(summary['baseline'])}. ADE@h: mean L2 over the waypoints "
            "up to h; FDE@h: L2 at h; min over samples for minADE/minFDE.</p>"
        )
    ag = summary["agreement"]
    dv = ag["decision_vs_reference"]
    h.append(
        "<h2>Reasoning</h2><table>"
        f"<tr><td class='l'>reasoning-action agreement (node monitor)</td><td>{_pct(ag['reasoning_action_agree_rate'])}"
        f" of {ag['reasoning_action_compared']} compared ({ag['reasoning_action_unknown']} unknown)</td></tr>"
        f"<tr><td class='l'>decision = reference label: longitudinal</td><td>{_pct(dv['longitudinal'])}</td></tr>"
        f"<tr><td class='l'>decision = reference label: lateral</td><td>{_pct(dv['lateral'])}</td></tr>"
        f"<tr><td class='l'>decision = reference label: both</td><td>{_pct(dv['both'])}</td></tr>"
        f"<tr><td class='l'>reference label vs recorded future (label sanity)</td>"
        f"<td>{_pct(ag['reference_vs_ground_truth_trajectory'])}</td></tr></table>"
    )
    lat = summary.get("latency_ms")
    if lat:
        h.append(
            f"<p>Latency per inference: mean {lat['mean']:.0f} ms, p50 {lat['p50']:.0f} ms, p90 {lat['p90']:.0f} ms,"
            f" max {lat['max']:.0f} ms ({lat['count']} inferences).</p>"
        )

    # Plots: error over time per bag, model vs baseline; speed.
    h.append("<h2>Plots</h2><div class='row'>")
    for ev in evals:
        if not ev.ticks:
            continue
        t = [x.t_sec for x in ev.ticks]
        svg = svg_lines(
            [
                ("model ADE@6.4s", "#1f6fe0", t, [x.errors.ade["6.4s"] for x in ev.ticks]),
                ("const-vel ADE@6.4s", "#888", t, [x.baseline_errors.ade["6.4s"] for x in ev.ticks]),
                ("model FDE@3s", "#e07b1f", t, [x.errors.fde["3s"] for x in ev.ticks]),
            ],
            f"{ev.bag.name}: error per tick",
            "m",
        )
        (img_dir / f"{ev.bag.name}_errors.svg").write_text(svg)
        h.append(svg)
        h.append(svg_lines([("ego speed", "#2a2", t, [x.speed_mps for x in ev.ticks])], f"{ev.bag.name}: speed", "m/s"))
    h.append("</div>")

    h.append(
        "<h2>Ticks</h2><p class='small'>Bird's-eye view: magenta = recorded future, blue = plan (light blue: "
        "other samples), grey = constant-velocity baseline. Front camera: the node's overlay (plan coloured by "
        "reasoning-action agreement: green agree, red disagree, amber unknown), recorded future in magenta.</p>"
    )
    for ev in evals:
        for k, tick in enumerate(ev.ticks):
            if not tick.frames:
                continue
            stem = f"{ev.bag.name}_{k:04d}"
            cells = []
            mos = mosaic(tick.frames)
            if mos is not None:
                _write_png(img_dir / f"{stem}_mosaic.jpg", mos)
                cells.append(f"<img src='img/{stem}_mosaic.jpg' width='480' alt='cameras'>")
            front = front_overlay(ev, tick)
            if front is not None:
                _write_png(img_dir / f"{stem}_front.jpg", front)
                cells.append(f"<img src='img/{stem}_front.jpg' width='560' alt='front camera'>")
            _write_png(img_dir / f"{stem}_bev.png", bev(tick))
            cells.append(f"<img src='img/{stem}_bev.png' width='300' alt='bird eye view'>")
            cls = {Agreement.AGREE: "agree", Agreement.DISAGREE: "disagree"}.get(tick.agreement, "unknown")
            h.append(
                f"<div class='tick'><b>{html.escape(ev.bag.name)} t = {tick.t_sec:.1f} s</b> "
                f"<span class='small'>(t0 {tick.t0_ns})</span> ADE@6.4s {tick.errors.ade['6.4s']:.2f} m "
                f"(const-vel {tick.baseline_errors.ade['6.4s']:.2f} m), FDE@3s {tick.errors.fde['3s']:.2f} m"
                + (f", latency {tick.latency_ms:.0f} ms" if tick.latency_ms is not None else "")
                + f"<div class='row'>{''.join(cells)}</div>"
                f"<p><b>reasoning:</b> {html.escape(tick.reasoning or '(none)')}<br>"
                f"<b>stated:</b> {_dec(tick.stated)}; <b>trajectory shows:</b> {_dec(tick.shown)}; "
                f"<span class='{cls}'>{tick.agreement.name.lower()}</span> "
                f"<span class='small'>{html.escape(tick.agreement_detail)}</span><br>"
                f"<b>reference:</b> {_dec(tick.reference)}: {html.escape(tick.reference_text)}</p></div>"
            )
    h.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(h))
    return path


__all__ = ["CAMERA_NAMES", "write_report"]
