"""What a simulation run leaves behind: metrics.json, junit.xml (one test case per rollout), report.html, the table.

JUnit: a rollout whose scenario success conditions hold (reach the goal region or stop before the line while red, no
at-fault contact, no offroad, no red-light violation: ``sim.metrics``) is a passing test case; a failed condition is a
``<failure>`` naming the condition, the time and what happened; a rollout the node could not drive (it died, never
came up) is an ``<error>``. ``colcon test`` / CI read the file as it is.
"""

from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alpamayo_ros.sim.closed_loop import Rollout
    from alpamayo_ros.sim.metrics import RolloutMetrics
    from alpamayo_ros.tools.sim import RolloutResult

FLAG_KEYS = ("collision_at_fault", "close_encounter", "red_light_violation", "offroad")


def driver_totals(results: Sequence[RolloutResult]) -> dict[str, dict[str, Any]]:
    """Per driver: rollouts, passed, rates of each failure flag, mean scene score and progress, real-time factor."""
    totals: dict[str, dict[str, Any]] = {}
    for driver in dict.fromkeys(r.driver for r in results):
        rows = [r for r in results if r.driver == driver]
        scored = [r.metrics for r in rows if r.metrics is not None]
        sim_s = sum(r.sim_s for r in rows)
        totals[driver] = {
            "rollouts": len(rows),
            "passed": sum(r.passed for r in rows),
            "errors": sum(bool(r.error) for r in rows),
            **{f"{k}_rate": _mean([float(bool(m[k])) for m in scored]) for k in FLAG_KEYS},
            "scene_score_mean": _mean([float(m["scene_score"]) for m in scored]),
            "progress_ratio_mean": _mean([float(m["progress_ratio"]) for m in scored]),
            "comfortable_rate": _mean([float(bool(m["comfortable"])) for m in scored]),
            "wall_per_sim_s": sum(r.wall_s for r in rows) / sim_s if sim_s else None,
        }
    return totals


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def format_table(results: Sequence[RolloutResult]) -> str:
    """One line per rollout, then the per-driver totals."""
    lines = [
        f"{'scenario':24s} {'seed':>4s} {'driver':17s} {'score':>5s} {'fault':>5s} {'close':>5s} {'red':>3s} "
        f"{'off':>3s} {'progress':>8s} {'comfort':>7s} {'min_ttc':>7s} {'wall_s':>6s}  verdict"
    ]
    for r in results:
        m = r.metrics
        if m is None:
            lines.append(f"{r.scenario:24s} {r.seed:4d} {r.driver:17s} ERROR {r.error}")
            continue
        ttc = m["min_ttc_s"]
        verdict = "pass" if r.passed else "FAIL: " + ", ".join(f["condition"] for f in m["failures"])
        if r.error:
            verdict = f"ERROR ({r.error}) " + verdict
        lines.append(
            f"{r.scenario:24s} {r.seed:4d} {r.driver:17s} {m['scene_score']:5.2f} "
            + " ".join(f"{int(bool(m[k])):>{w}d}" for k, w in zip(FLAG_KEYS, (5, 5, 3, 3), strict=True))
            + f" {m['progress_ratio']:8.2f} {int(bool(m['comfortable'])):7d} "
            f"{'inf' if ttc is None else f'{ttc:.2f}':>7s} {r.wall_s:6.1f}  {verdict}"
        )
    lines.append("")
    lines.append("driver             rollouts passed at-fault close red-light offroad score progress wall/sim")
    for driver, t in driver_totals(results).items():
        rates = " ".join(f"{_pct(t[f'{k}_rate']):>8s}" for k in FLAG_KEYS)
        ratio = t["wall_per_sim_s"]
        lines.append(
            f"{driver:18s} {t['rollouts']:8d} {t['passed']:6d} {rates} {_num(t['scene_score_mean']):>5s} "
            f"{_num(t['progress_ratio_mean']):>8s} {'n/a' if ratio is None else f'{ratio:.2f}x':>8s}"
        )
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def write_rollout_files(rollout: Rollout, metrics: RolloutMetrics, out_dir: Path) -> dict[str, str]:
    """GIF, time plots, metrics and (for the first failure of a rendered rollout) the camera mosaic at that tick."""
    from alpamayo_ros.sim.rollout_report import write_rollout_report

    frames = _failure_frames(out_dir / "bag", metrics)
    write_rollout_report(rollout, metrics, out_dir, frames)
    names = ("birdseye.gif", "timeseries.png", "failure_cameras.png", "metrics.json", "bag")
    return {name: str(out_dir / name) for name in names if (out_dir / name).exists()}


def _failure_frames(bag: Path, metrics: RolloutMetrics) -> list[Any]:
    """The seven camera frames of the first failure's tick, read back from the rollout's bag (none if not recorded)."""
    if not metrics.failures or not (bag / "metadata.yaml").is_file():
        return []
    from alpamayo_ros.core.planning import decode_frame
    from alpamayo_ros.sim.generate import START_NS
    from alpamayo_ros.tools import bagio

    stamp = START_NS + round(metrics.failures[0].t_s * 1e9)
    frames = []
    for rec in bagio.read_bags([bag]):
        if rec.typename == bagio.IMAGE and rec.log_time_ns == stamp:
            frames.append(decode_frame(bagio.deserialize(rec.raw, rec.typename)))
    return frames


def write_outputs(out: Path, results: Sequence[RolloutResult], scenes: dict[str, Any] | None = None) -> None:
    """metrics.json, junit.xml and report.html for the run; ``scenes``: where its scenes came from
    (``tools.scene_options.scene_choice``), recorded in metrics.json."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "scenes": scenes,
        "drivers": driver_totals(results),
        "rollouts": [
            {"scenario": r.scenario, "seed": r.seed, "driver": r.driver, "passed": r.passed, "error": r.error,
             "wall_s": round(r.wall_s, 2), "sim_s": round(r.sim_s, 2), "metrics": r.metrics, "files": r.files}
            for r in results
        ],
    }  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    (out / "junit.xml").write_text(junit_xml(results))
    (out / "report.html").write_text(report_html(out, results))


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def junit_xml(results: Sequence[RolloutResult]) -> str:
    """JUnit XML: one testsuite, one testcase per rollout (classname sim.<scenario>, name seed<seed>.<driver>)."""
    suite = ET.Element(
        "testsuite",
        name="alpamayo_ros.sim",
        tests=str(len(results)),
        failures=str(sum(r.metrics is not None and not r.passed and not r.error for r in results)),
        errors=str(sum(bool(r.error) for r in results)),
        time=f"{sum(r.wall_s for r in results):.2f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=f"sim.{r.scenario}", name=f"seed{r.seed}.{r.driver}", time=f"{r.wall_s:.2f}"
        )
        if r.error:
            ET.SubElement(case, "error", message=r.error).text = r.error
        elif r.metrics is not None and not r.passed:
            failures = r.metrics["failures"]
            message = "; ".join(f"{f['condition']} at {f['t_s']:.1f} s" for f in failures)
            ET.SubElement(case, "failure", message=message).text = "\n".join(
                f"{f['condition']} at {f['t_s']:.1f} s (tick {f['tick']}): {f['detail']}" for f in failures
            )
        if r.metrics is not None:
            keys = ("scene_score", "progress_ratio", "min_ttc_s", "min_distance_to_obstacle_m", "missed_plans")
            ET.SubElement(case, "system-out").text = json.dumps({k: r.metrics.get(k) for k in keys})
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def report_html(out: Path, results: Sequence[RolloutResult]) -> str:
    """Drivers side by side per scenario and seed, the totals, and per rollout its GIF, plots and failure mosaic."""
    totals = driver_totals(results)
    drivers = list(totals)
    rows = []
    for scenario, seed in dict.fromkeys((r.scenario, r.seed) for r in results):
        cells = []
        for driver in drivers:
            r = next((x for x in results if (x.scenario, x.seed, x.driver) == (scenario, seed, driver)), None)
            cells.append(_cell(out, r))
        rows.append(f"<tr><th>{html.escape(scenario)} / {seed}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(d)}</th>" for d in drivers)
    total_rows = "".join(
        f"<tr><th>{html.escape(d)}</th><td>{t['passed']} / {t['rollouts']} passed; at-fault "
        f"{_pct(t['collision_at_fault_rate'])}, close encounters {_pct(t['close_encounter_rate'])}, red light "
        f"{_pct(t['red_light_violation_rate'])}, offroad {_pct(t['offroad_rate'])}; scene score "
        f"{_num(t['scene_score_mean'])}, progress {_num(t['progress_ratio_mean'])}</td></tr>"
        for d, t in totals.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>alpamayo_ros closed-loop simulation</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}.fail{background:#fdd}.pass{background:#dfd}img{max-width:360px}</style>"
        "</head><body><h1>Closed-loop simulation</h1><h2>Drivers</h2><table>"
        f"{total_rows}</table><h2>Rollouts</h2><table><tr><th>scenario / seed</th>{head}</tr>{''.join(rows)}"
        "</table></body></html>\n"
    )


def _cell(out: Path, r: RolloutResult | None) -> str:
    if r is None:
        return "<td></td>"
    if r.metrics is None:
        return f"<td class='fail'>error: {html.escape(r.error)}</td>"
    m = r.metrics
    lines = [
        f"score {m['scene_score']:.2f}, progress {m['progress_ratio']:.2f}",
        " ".join(k.replace("_", " ") for k in FLAG_KEYS if m[k]) or "no contact, on road, no red light",
        *(f"{f['condition']} at {f['t_s']:.1f} s: {f['detail']}" for f in m["failures"]),
    ]
    if r.error:
        lines.append(f"error: {r.error}")
    media = "".join(
        f"<br><img src='{html.escape(str(Path(r.files[name]).relative_to(out)))}' alt='{name}'>"
        for name in ("birdseye.gif", "timeseries.png", "failure_cameras.png")
        if name in r.files
    )
    cls = "pass" if r.passed else "fail"
    return f"<td class='{cls}'>{'<br>'.join(html.escape(x) for x in lines)}{media}</td>"
