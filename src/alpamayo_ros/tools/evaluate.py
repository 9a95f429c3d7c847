"""`alpamayo-ros evaluate BAG...`: open-loop evaluation of a model (or of recorded node outputs) on bags.

The bag is read in log-time order and fed through the node's own pipeline code: ``core.sync.FrameSynchronizer`` (anchor
camera + tolerance), ``core.ego_history`` (timestamp-interpolated 16-pose history), ``core.sync.assemble_images`` and
the model from ``runtime.registry.load_model``, with the node's default parameters (``core.params``), its synchroniser
settings (``core.planning.sync_config``) and its output sanity gate (``core.planning.check_prediction``: a tick whose
prediction fails it is a model failure, counted, not scored). A planning tick is every anchor-camera frame, planned once
every message logged at or before its stamp has been fed (no DDS, no timer, no dropped ticks: deterministic). Each plan
is compared with the recorded future (``/ground_truth/path``, else the odometry itself): ADE / FDE / minADE at 0.5 / 1 /
3 / 5 / 6.4 s (XY), the node's reasoning-action consistency monitor (``core.decisions``), and decision agreement with
the reference labels (``/ground_truth/reasoning``). A constant-velocity baseline is scored on the same ticks.

``--predictions RECORDED_BAG`` scores what a running node published instead (its Path and ChainOfCausation,
matched to the scenario bag by header stamp t0), e.g. a bag recorded during ``alpamayo-ros demo``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alpamayo_ros.core.decisions import Agreement, Decision, Lateral, Longitudinal, classify_trajectory
from alpamayo_ros.core.diagnostics import DiagnosticsParams, PlanningStats
from alpamayo_ros.core.ego_history import OdometryBuffer, OdometryRejectedError, make_odom_sample
from alpamayo_ros.core.images import resize_rgb
from alpamayo_ros.core.intake import InputIntake
from alpamayo_ros.core.model_spec import BACKENDS, ModelSpec
from alpamayo_ros.core.params import NodeParams, ParamsFileError, load_params_file
from alpamayo_ros.core.planning import FailureKind, Skip, SkipKind, decode_frame, plan_once, select_job, sync_config
from alpamayo_ros.core.rig import CAMERA_NAMES, FUTURE_STEPS, HISTORY_STEPS, STEP_SEC
from alpamayo_ros.core.transforms import quat_to_matrix, to_local
from alpamayo_ros.core.types import FloatArray, ModelInfo
from alpamayo_ros.core.uncertainty import sample_uncertainty
from alpamayo_ros.tools import bagio, metrics
from alpamayo_ros.tools.cli_checks import number_problem, output_path_problem
from alpamayo_ros.tools.results import BagEvaluation, TickResult
from alpamayo_ros.tools.synth import load_sidecar

MOSAIC_WIDTH = 320  # per-camera width of the report mosaic (px)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bags", nargs="+", type=Path, help="scenario bags, directories of bags, globs or manifest files (see fleet)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/evaluation"), help="report directory")
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="node parameter file (as given to the node): the evaluation uses its sync, ego-history and model settings",
    )
    model_help = "(default: the parameter file's model.* value, else the node's default)"
    parser.add_argument("--backend", choices=BACKENDS, default=None, help=f"model backend {model_help}")
    parser.add_argument("--model", default=None, help=f"checkpoint directory or preset name {model_help}")
    parser.add_argument("--device", default=None, help=model_help)
    parser.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help=f"samples per tick (minADE; ADE scores the one the parameter file's plan_choice plans on) {model_help}",
    )
    parser.add_argument("--max-reasoning-tokens", type=int, default=None, help=model_help)
    parser.add_argument("--seed", type=int, default=None, help=model_help)
    parser.add_argument("--max-ticks", type=int, default=0, help="stop each bag after this many planned ticks")
    parser.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="score a bag of recorded node outputs instead of running a model (one scenario bag)",
    )
    parser.add_argument("--path-topic", default="", help="Path topic in --predictions (default: */output/path)")
    parser.add_argument("--reasoning-topic", default="", help="ChainOfCausation topic (default: */output/reasoning)")
    parser.add_argument("--report-ticks", type=int, default=24, help="ticks shown in detail in the HTML report")
    from alpamayo_ros.tools.fleet.command import add_fleet_arguments

    add_fleet_arguments(parser)


# ------------------------------------------------------------------------------------------------ helpers
def camera_of(topic: str) -> str | None:
    """Which rig camera an image topic belongs to (by name), None for other topics."""
    for cam in CAMERA_NAMES:
        if f"/{cam}/" in topic + "/":
            return cam
    return None


def path_xy(msg: Any) -> FloatArray:
    return np.array([[p.pose.position.x, p.pose.position.y] for p in msg.poses], dtype=np.float64).reshape(-1, 2)


def _decision(msg: Any) -> Decision:
    return Decision(Longitudinal(int(msg.longitudinal)), Lateral(int(msg.lateral)))


def future_from_odometry(odom: OdometryBuffer, t0_ns: int, max_gap_sec: float = 0.25) -> FloatArray | None:
    """(64, 2) future XY in the t0 ego frame from recorded odometry (bags without /ground_truth/path)."""
    gap = int(max_gap_sec * 1e9)
    at0 = odom.interpolate(t0_ns, gap, 0)
    if isinstance(at0, str):
        return None
    pts = []
    for i in range(FUTURE_STEPS):
        got = odom.interpolate(t0_ns + round((i + 1) * STEP_SEC * 1e9), gap, 0)
        if isinstance(got, str):
            return None
        pts.append(got[0])
    r0 = quat_to_matrix(at0[1][None])[0]
    xyz, _ = to_local(at0[0], r0, np.array(pts), np.broadcast_to(np.eye(3), (FUTURE_STEPS, 3, 3)))
    return np.asarray(xyz[:, :2], dtype=np.float64)


@dataclass
class _Predicted:
    xy: FloatArray
    coc: Any = None


def load_predictions(bag: Path, path_topic: str = "", reasoning_topic: str = "") -> dict[int, _Predicted]:
    """t0 (header stamp) -> the node's published plan (Path) and reasoning (sample 0)."""
    topics = bagio.bag_topics(bag)
    paths = [
        t.topic
        for t in topics
        if t.typename == bagio.PATH and (t.topic == path_topic or (not path_topic and t.topic.endswith("output/path")))
    ]
    cocs = [
        t.topic
        for t in topics
        if t.typename == bagio.COC
        and (t.topic == reasoning_topic or (not reasoning_topic and t.topic.endswith("output/reasoning")))
    ]
    if not paths:
        raise bagio.BagError(
            f"{bag}: no nav_msgs/Path topic {path_topic or '*/output/path'} "
            f"(topics: {', '.join(t.topic for t in topics)})"
        )
    out: dict[int, _Predicted] = {}
    cocs_by_t0: dict[int, Any] = {}
    for rec in bagio.read_bags([bag], [paths[0], *cocs[:1]]):
        msg = bagio.deserialize(rec.raw, rec.typename)
        t0 = bagio.stamp_ns(msg.header.stamp)
        if rec.typename == bagio.PATH:
            out[t0] = _Predicted(path_xy(msg))
        elif int(msg.sample_index) == 0:
            cocs_by_t0[t0] = msg
    for t0, coc in cocs_by_t0.items():
        if t0 in out:
            out[t0].coc = coc
    return out


# --------------------------------------------------------------------------------------------- evaluation
def evaluate_bag(
    bag: Path,
    model: Any | None,
    *,
    params: NodeParams | None = None,
    predictions: dict[int, _Predicted] | None = None,
    max_ticks: int = 0,
    report_ticks: int = 24,
    progress: bool = True,
) -> BagEvaluation:
    """Feed one bag through the node's planning tick; plan (model) or look up (predictions) at every anchor frame.

    The messages go through the node's ``core.intake.InputIntake``; each anchor frame is planned with
    ``core.planning.select_job`` at node time t0 (the bag is replayed without delay, so no sample is stale) and
    ``core.planning.plan_once``, with ``params`` (a node parameter file; the node's defaults when None).
    """
    from tqdm import tqdm

    prm = params or NodeParams()
    info = model.info if model is not None else None
    anchor = prm.sync.anchor_camera
    # recorded predictions are matched on the anchor camera alone
    sync_info = info or ModelInfo("recorded", "", (anchor,), (0.0,), None)
    intake = InputIntake()
    intake.configure(sync_config(prm.sync, sync_info), prm.ego, prm.input)
    stats = PlanningStats()
    result = BagEvaluation(bag, load_sidecar(bag))
    topics = bagio.bag_topics(bag)
    anchor_topics = [
        t for t in topics if camera_of(t.topic) == anchor and t.typename in (bagio.IMAGE, bagio.COMPRESSED)
    ]
    total = anchor_topics[0].count if anchor_topics else 0
    # ticks after the first 1.5 s (no ego history before) spread evenly over the report
    report_every = max(1, math.ceil((total - HISTORY_STEPS + 1) / max(1, report_ticks)))
    has_gt_path = any(t.topic == bagio.GT_PATH_TOPIC for t in topics)
    # Odometry kept whole for ground truth from odometry (bags without /ground_truth/path).
    odom_all = OdometryBuffer(1e9, 1e9)
    gt_paths: dict[int, FloatArray] = {}
    gt_labels: dict[int, Any] = {}
    first_ns: int | None = None
    pending: list[tuple[int, int]] = []  # (anchor stamp t0, log time after which it is planned)
    bar = tqdm(total=total, unit="tick", desc=f"evaluate {bag.name}", disable=not progress)

    def plan(t0_ns: int) -> None:
        bar.update(1)
        result.anchor_frames += 1
        if max_ticks and len(result.ticks) >= max_ticks:
            result.skipped["beyond --max-ticks"] += 1
            return
        job = select_job(
            intake,
            t0_ns,
            stats,
            planning=prm.planning,
            ego=prm.ego,
            backwards_jump_sec=prm.sync.backwards_jump_sec,
        )
        if isinstance(job, Skip):
            result.skipped[_skip_key(job)] += 1
            return
        if job.t0_ns != t0_ns:
            result.skipped["sync: a newer anchor frame was complete"] += 1
            return
        ego = job.ego
        gt = gt_paths.get(t0_ns)  # None without /ground_truth/path: filled from odometry after the bag was read
        if has_gt_path and gt is None:
            result.skipped["no ground truth for t0"] += 1
            return
        latency: float | None = None
        uncertainty = math.nan
        if model is not None:
            planned = plan_once(job, model, prm.planning.plan_choice)
            if planned.failure is not None:
                text = planned.failure.text.splitlines()[0].removeprefix("model output rejected: ")
                if planned.failure.kind is FailureKind.INPUT:
                    result.skipped[text] += 1
                    return
                result.model_failures[text] += 1
                result.skipped[f"model failure: {text}"] += 1
                return
            pred = planned.prediction
            assert pred is not None
            latency = planned.stage_ms["inference_ms"]
            pred_xy = np.asarray(pred.xyz[:, :, :2], dtype=np.float64)
            report = planned.reports[0]
            reasoning, stated, shown = pred.reasoning[0], report.stated, report.shown
            agreement, detail = report.agreement, report.detail
            uncertainty = sample_uncertainty(pred, 0)
        else:
            assert predictions is not None
            got = predictions.get(t0_ns)
            if got is None:
                result.skipped["node published no plan for this t0"] += 1
                return
            pred_xy = np.asarray(got.xy[None], dtype=np.float64)
            if got.coc is not None:
                reasoning = str(got.coc.reasoning_text)
                stated, shown = _decision(got.coc.reasoning_decision), _decision(got.coc.trajectory_decision)
                agreement, detail = Agreement(int(got.coc.agreement)), str(got.coc.agreement_detail)
                latency = float(got.coc.latency.total_ms)
                uncertainty = float(got.coc.reasoning_uncertainty)
            else:
                reasoning, agreement, detail = "", Agreement.UNKNOWN, "no reasoning recorded"
                stated = Decision()
                xyz = np.column_stack([got.xy, np.zeros(len(got.xy))])
                shown = classify_trajectory(xyz, ego.speed_mps)
        label = gt_labels.get(t0_ns)
        tick = TickResult(
            bag=bag.name,
            t0_ns=t0_ns,
            t_sec=(t0_ns - (first_ns or t0_ns)) / 1e9,
            speed_mps=ego.speed_mps,
            pred_xy=pred_xy,
            gt_xy=gt if gt is not None else np.zeros((FUTURE_STEPS, 2)),
            baseline_xy=metrics.constant_velocity(ego.history.xyz),
            reasoning=reasoning,
            stated=stated,
            shown=shown,
            agreement=agreement,
            agreement_detail=detail,
            reference=_decision(label.reasoning_decision) if label is not None else None,
            reference_text=str(label.reasoning_text) if label is not None else "",
            errors=metrics.tick_errors(pred_xy, np.zeros((FUTURE_STEPS, 2))),
            baseline_errors=metrics.tick_errors(np.zeros((FUTURE_STEPS, 2)), np.zeros((FUTURE_STEPS, 2))),
            latency_ms=latency,
            uncertainty=uncertainty,
        )
        if len(result.ticks) % report_every == 0 and intake.sync is not None:
            for cam in CAMERA_NAMES:
                entry = intake.sync.frame_at(cam, t0_ns)
                if entry is None:
                    continue
                rgb = decode_frame(entry.payload)
                h, w = rgb.shape[:2]
                tick.frames[cam] = resize_rgb(rgb, (max(1, round(h * MOSAIC_WIDTH / w)), MOSAIC_WIDTH)).copy()
                if cam == prm.overlay.camera:
                    tick.overlay_rgb = np.ascontiguousarray(rgb)
        result.ticks.append(tick)

    for rec in bagio.read_bags([bag]):
        if first_ns is None:
            first_ns = rec.log_time_ns
        while pending and rec.log_time_ns > pending[0][1]:
            plan(pending.pop(0)[0])
        cam = camera_of(rec.topic)
        if rec.typename in (bagio.IMAGE, bagio.COMPRESSED) and cam is not None:
            msg = bagio.deserialize(rec.raw, rec.typename)
            intake.add_frame(cam, msg, rec.log_time_ns)
            stamp = bagio.stamp_ns(msg.header.stamp)
            if cam == anchor and stamp > 0:
                # Synthetic bags log at the stamp (all cameras of a tick share it); recorded bags log at receive
                # time, so the other cameras of the tick get the sync tolerance to arrive.
                lag = 0 if rec.log_time_ns == stamp else int(prm.sync.tolerance_sec * 1e9)
                pending.append((stamp, rec.log_time_ns + lag))
        elif rec.typename == bagio.CAMERA_INFO and cam is not None and cam not in result.camera_info:
            msg = bagio.deserialize(rec.raw, rec.typename)
            result.camera_info[cam] = (np.asarray(msg.k, dtype=np.float64), int(msg.width), int(msg.height))
        elif rec.typename == bagio.ODOMETRY:
            msg = bagio.deserialize(rec.raw, rec.typename)
            intake.add_odometry(msg, rec.log_time_ns)
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            try:
                sample = make_odom_sample(bagio.stamp_ns(msg.header.stamp), (p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
            except OdometryRejectedError:
                continue
            odom_all.add(sample, msg.header.frame_id)
        elif rec.topic == bagio.GT_PATH_TOPIC:
            msg = bagio.deserialize(rec.raw, rec.typename)
            gt_paths[bagio.stamp_ns(msg.header.stamp)] = path_xy(msg)
        elif rec.topic == bagio.GT_REASONING_TOPIC:
            msg = bagio.deserialize(rec.raw, rec.typename)
            gt_labels[bagio.stamp_ns(msg.header.stamp)] = msg
    while pending:
        plan(pending.pop(0)[0])
    bar.close()

    # Scores (ground truth from odometry where the bag has no /ground_truth/path).
    scored: list[TickResult] = []
    for tick in result.ticks:
        if not has_gt_path:
            gt = future_from_odometry(odom_all, tick.t0_ns)
            if gt is None:
                result.skipped["no odometry 6.4 s beyond t0 (ground truth)"] += 1
                continue
            tick.gt_xy = gt
        tick.errors = metrics.tick_errors(tick.pred_xy, tick.gt_xy)
        tick.baseline_errors = metrics.tick_errors(tick.baseline_xy, tick.gt_xy)
        scored.append(tick)
    result.ticks = scored
    return result


def _skip_key(skip: Skip) -> str:
    """The report's skip reason for a tick without a job (counted per camera for sync failures)."""
    if skip.kind is SkipKind.NO_SAMPLE:
        return "sync: " + skip.reason.removeprefix("sync failed: ").split(":")[0]
    if skip.kind is SkipKind.NO_EGO_HISTORY:
        return "ego history incomplete (first 1.5 s of the bag)"
    return f"{skip.kind.value}: {skip.reason}"


def summarize(
    evals: list[BagEvaluation],
    model_desc: dict[str, Any],
    uncertainty_warn: float = DiagnosticsParams().uncertainty_warn,
) -> dict[str, Any]:
    """All figures of a run as one JSON-able dict (summary first, then per tick). ``uncertainty_warn``: the node's
    ``diagnostics.uncertainty_warn`` whose flag rates are reported."""
    ticks = [t for e in evals for t in e.ticks]
    agree = [t.agreement == Agreement.AGREE for t in ticks if t.agreement != Agreement.UNKNOWN]
    with_ref = [t for t in ticks if t.reference is not None]
    lon_ok = [t.stated.longitudinal == t.reference.longitudinal for t in with_ref if t.reference]
    lat_ok = [t.stated.lateral == t.reference.lateral for t in with_ref if t.reference]
    both_ok = [t.stated == t.reference for t in with_ref]
    ref_vs_gt: list[bool] = []
    for t in with_ref:
        assert t.reference is not None
        shown = classify_trajectory(np.column_stack([t.gt_xy, np.zeros(len(t.gt_xy))]), t.speed_mps)
        from alpamayo_ros.core.decisions import compare

        verdict, _ = compare(t.reference, shown)
        if verdict != Agreement.UNKNOWN:
            ref_vs_gt.append(verdict == Agreement.AGREE)
    lat_ms = [t.latency_ms for t in ticks if t.latency_ms is not None]
    skipped: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for e in evals:
        skipped.update(e.skipped)
        failures.update(e.model_failures)
    return {
        "model": model_desc,
        "bags": [
            {
                "bag": str(e.bag),
                "scenario": (e.sidecar or {}).get("scenario"),
                "seed": (e.sidecar or {}).get("seed"),
                "anchor_frames": e.anchor_frames,
                "planned_ticks": len(e.ticks),
            }
            for e in evals
        ],
        "ticks": {"anchor_frames": sum(e.anchor_frames for e in evals), "scored": len(ticks), "skipped": dict(skipped)},
        "model_failures": {"count": sum(failures.values()), "reasons": dict(failures)},
        "model_metrics": metrics.mean_errors([t.errors for t in ticks]),
        "baseline_metrics": metrics.mean_errors([t.baseline_errors for t in ticks]),
        "baseline": "constant velocity: mean XY velocity of the last 0.3 s of ego history, extrapolated",
        "agreement": {
            "reasoning_action_agree_rate": metrics.rate(agree),
            "reasoning_action_compared": len(agree),
            "reasoning_action_unknown": len(ticks) - len(agree),
            "decision_vs_reference": {
                "longitudinal": metrics.rate(lon_ok),
                "lateral": metrics.rate(lat_ok),
                "both": metrics.rate(both_ok),
                "ticks": len(with_ref),
            },
            "reference_vs_ground_truth_trajectory": metrics.rate(ref_vs_gt),
        },
        "uncertainty": metrics.uncertainty_summary(
            [(t.uncertainty, None if t.reference is None else t.stated != t.reference) for t in ticks],
            uncertainty_warn,
        ),
        "latency_ms": {
            "mean": float(np.mean(lat_ms)),
            "p50": float(np.percentile(lat_ms, 50)),
            "p90": float(np.percentile(lat_ms, 90)),
            "max": float(np.max(lat_ms)),
            "count": len(lat_ms),
        }
        if lat_ms
        else None,
        "per_tick": [
            {
                "bag": t.bag,
                "t0_ns": t.t0_ns,
                "t_sec": round(t.t_sec, 3),
                "speed_mps": round(t.speed_mps, 3),
                "ade": t.errors.ade,
                "fde": t.errors.fde,
                "min_ade": t.errors.min_ade,
                "baseline_ade": t.baseline_errors.ade,
                "baseline_fde": t.baseline_errors.fde,
                "reasoning": t.reasoning,
                "stated": [int(t.stated.longitudinal), int(t.stated.lateral)],
                "shown": [int(t.shown.longitudinal), int(t.shown.lateral)],
                "agreement": int(t.agreement),
                "agreement_detail": t.agreement_detail,
                "reference": None if t.reference is None else [int(t.reference.longitudinal), int(t.reference.lateral)],
                "reference_text": t.reference_text,
                "latency_ms": t.latency_ms,
                "uncertainty": None if math.isnan(t.uncertainty) else t.uncertainty,
            }
            for t in ticks
        ],
    }


def run_evaluation(
    bags: list[Path],
    out: Path,
    spec: ModelSpec | None,
    *,
    params: NodeParams | None = None,
    predictions: Path | None = None,
    max_ticks: int = 0,
    report_ticks: int = 24,
    path_topic: str = "",
    reasoning_topic: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate, write metrics.json + report.html under out, return the summary."""
    from alpamayo_ros.tools.report import write_report

    model = None
    preds = None
    if predictions is not None:
        if len(bags) != 1:
            raise ValueError(f"--predictions scores one scenario bag at a time, got {len(bags)}")
        preds = load_predictions(predictions, path_topic, reasoning_topic)
        desc: dict[str, Any] = {"source": "recorded node outputs", "predictions_bag": str(predictions)}
        first = next(iter(preds.values()), None)
        if first is not None and first.coc is not None:
            desc.update(name=str(first.coc.model_name), version=str(first.coc.model_version))
    else:
        assert spec is not None
        from alpamayo_ros.runtime.registry import load_model

        started = time.perf_counter()
        model = load_model(spec)
        info = model.info
        desc = {
            "source": "offline",
            "backend": spec.backend,
            "model_path": spec.model_path,
            "name": info.name,
            "version": info.version,
            "untrained": info.untrained,
            "num_samples": spec.num_samples,
            "load_sec": round(time.perf_counter() - started, 2),
        }
    try:
        evals = [
            evaluate_bag(
                b,
                model,
                params=params,
                predictions=preds,
                max_ticks=max_ticks,
                report_ticks=report_ticks,
                progress=progress,
            )
            for b in bags
        ]
    finally:
        if model is not None:
            model.close()
    summary = summarize(evals, desc, (params or NodeParams()).diagnostics.uncertainty_warn)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    write_report(out, summary, evals)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    m, b = summary.get("model_metrics") or {}, summary.get("baseline_metrics") or {}
    ag = summary["agreement"]
    lat = summary.get("latency_ms")

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.0f} %"

    lines = [f"ticks scored: {summary['ticks']['scored']} of {summary['ticks']['anchor_frames']} anchor frames"]
    if m:
        lines.append("ADE (m)      " + "  ".join(f"{k:>5}" for k in m["ade"]))
        lines.append("  model      " + "  ".join(f"{v:5.2f}" for v in m["ade"].values()))
        lines.append("  const-vel  " + "  ".join(f"{v:5.2f}" for v in b["ade"].values()))
        lines.append(
            f"FDE@6.4s model {m['fde']['6.4s']:.2f} m, const-vel {b['fde']['6.4s']:.2f} m; "
            f"minADE@6.4s {m['min_ade']['6.4s']:.2f} m"
        )
    lines.append(
        f"reasoning-action agreement {pct(ag['reasoning_action_agree_rate'])} "
        f"({ag['reasoning_action_compared']} compared); decision vs reference: longitudinal "
        f"{pct(ag['decision_vs_reference']['longitudinal'])}, lateral {pct(ag['decision_vs_reference']['lateral'])}"
    )
    unc = summary.get("uncertainty")
    if unc:
        auroc = "n/a" if unc["auroc_decision_wrong"] is None else f"{unc['auroc_decision_wrong']:.2f}"
        lines.append(
            f"reasoning uncertainty: mean {unc['mean']:.3f}; AUROC for a wrong decision {auroc} "
            f"({unc['wrong_decisions']} wrong of {unc['scored_decisions']}); above uncertainty_warn "
            f"{unc['warn_at']:g}: {pct(unc['flagged_right'])} of right and {pct(unc['flagged_wrong'])} of wrong "
            "decisions"
        )
    if lat:
        lines.append(
            f"latency ms: mean {lat['mean']:.0f}, p50 {lat['p50']:.0f}, p90 {lat['p90']:.0f}, max {lat['max']:.0f}"
        )
    return "\n".join(lines)


def model_path_problem(backend: str, model: str) -> str | None:
    """Why ``--model`` cannot name a checkpoint, checked before any model code (and torch) is loaded; None if it can.

    test_policy ignores the path; ``default`` is the shipped checkpoint; a directory must hold config.json; any other
    value must be a preset name.
    """
    if backend == "test_policy" or model == "default":
        return None
    path = Path(model).expanduser()
    if path.is_dir():
        return None if (path / "config.json").is_file() else f"--model {model}: directory has no config.json"
    from alpamayo_ros.model.presets import PRESETS

    if model in PRESETS:
        return None
    return f"--model {model}: no such checkpoint directory, and not a preset ({', '.join(('default', *PRESETS))})"


def input_problem(args: argparse.Namespace, params: NodeParams) -> str | None:
    """The first problem with the command's bags and numbers, as one line, before the model loads; None if none."""
    problem = number_problem(args, 0, "--max-ticks", "--report-ticks") or output_path_problem(
        "--out", args.out, directory=True
    )
    if problem is not None:
        return problem
    for bag in args.bags:
        problem = bagio.bag_problem(bag)
        if problem is not None:
            return problem
    if args.predictions is not None:
        if len(args.bags) != 1:
            return f"--predictions scores one scenario bag at a time, got {len(args.bags)}"
        problem = bagio.bag_problem(args.predictions)
        if problem is not None:
            return f"--predictions: {problem}"
    anchor = params.sync.anchor_camera
    for bag in args.bags:
        images = [t for t in bagio.bag_topics(bag) if t.typename in (bagio.IMAGE, bagio.COMPRESSED)]
        if not any(camera_of(t.topic) == anchor for t in images):
            found = ", ".join(t.topic for t in images) or "none"
            return (
                f"{bag} has no image topic of the anchor camera {anchor} (a topic with /{anchor}/ in its name; "
                f"image topics found: {found})"
            )
    return None


def run(args: argparse.Namespace) -> int:
    from alpamayo_ros.tools.fleet import command as fleet

    try:
        params = load_params_file(args.params_file) if args.params_file is not None else NodeParams()
    except ParamsFileError as exc:
        print(f"alpamayo-ros evaluate: {exc}", file=sys.stderr)
        return 2
    # a fleet run takes directories, globs and manifests: its inputs are checked entry by entry (tools.fleet.inputs)
    problem = None if fleet.fleet_requested(args) else input_problem(args, params)
    if problem is not None:
        print(f"alpamayo-ros evaluate: {problem}", file=sys.stderr)
        return 2
    spec = None
    if args.predictions is None:
        overrides = {
            "backend": args.backend,
            "model_path": args.model,
            "device": args.device,
            "num_samples": args.num_samples,
            "max_reasoning_tokens": args.max_reasoning_tokens,
            "seed": args.seed,
        }
        spec = dataclasses.replace(params.model, **{k: v for k, v in overrides.items() if v is not None})
        problems = spec.problems("--")
        model_problem = model_path_problem(spec.backend, spec.model_path)
        if model_problem is not None:
            problems.append(model_problem)
        if problems:
            print(f"alpamayo-ros evaluate: {'; '.join(problems)}", file=sys.stderr)
            return 2
    if fleet.fleet_requested(args):
        return fleet.run_fleet(args, params, spec)
    try:
        summary = run_evaluation(
            list(args.bags),
            args.out,
            spec,
            params=params,
            predictions=args.predictions,
            max_ticks=args.max_ticks,
            report_ticks=args.report_ticks,
            path_topic=args.path_topic,
            reasoning_topic=args.reasoning_topic,
        )
    except bagio.BagError as exc:  # e.g. --predictions without the node's Path topic
        print(f"alpamayo-ros evaluate: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    print(f"report: {args.out / 'report.html'}\nmetrics: {args.out / 'metrics.json'}")
    if summary["ticks"]["scored"] == 0:
        print(
            "alpamayo-ros evaluate: no anchor frame was scored (see metrics.json ticks.skipped for why)",
            file=sys.stderr,
        )
        return 1
    return 0
