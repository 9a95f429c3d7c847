"""What a fleet run adds to the report: the per-bag (evaluate) or per-rollout (sim) table and the comparison with a
baseline run."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any


def bags_section(rows: list[dict[str, Any]]) -> str:
    """The report's per-bag table (status, tags, scored ticks, ADE@6.4s, failure reason)."""
    h = [
        "<h2>Bags (fleet run)</h2><table><tr><th class='l'>bag</th><th class='l'>tags</th><th>status</th>"
        "<th>attempts</th><th>scored</th><th>ADE@6.4s</th><th class='l'>reason</th></tr>"
    ]
    for r in rows:
        ade = (r.get("model_metrics") or {}).get("ade", {}).get("6.4s")
        tags = " ".join(f"{k}={v}" for k, v in r["tags"].items())
        h.append(
            f"<tr><td class='l'>{html.escape(r['bag'])}</td><td class='l'>{html.escape(tags)}</td>"
            f"<td>{r['status']}</td><td>{r['attempts']}</td><td>{(r.get('ticks') or {}).get('scored', '-')}</td>"
            f"<td>{'-' if ade is None else f'{ade:.2f}'}</td>"
            f"<td class='l'>{html.escape(r['errors'][-1] if r['errors'] and r['status'] != 'ok' else '')}</td></tr>"
        )
    h.append("</table>")
    return "".join(h)


def rollouts_section(rows: list[dict[str, Any]]) -> str:
    """The simulation report's per-rollout table (status of its unit, attempts, worker, verdict, failure reason)."""
    h = [
        "<h2>Rollouts (fleet run)</h2><table><tr><th>scenario</th><th>seed</th><th>driver</th><th>status</th>"
        "<th>attempts</th><th>worker</th><th>score</th><th>verdict</th><th>reason</th></tr>"
    ]
    for r in rows:
        score = (r.get("metrics") or {}).get("scene_score")
        worker = " ".join(str(r["worker"][k]) for k in ("host", "pid", "ros_domain_id") if k in r["worker"])
        reason = r["error"] or (r["errors"][-1] if r["errors"] and r["status"] != "ok" else "")
        h.append(
            f"<tr><td>{html.escape(r['scenario'])}</td><td>{r['seed']}</td><td>{html.escape(r['driver'])}</td>"
            f"<td>{r['status']}</td><td>{r['attempts']}</td><td>{html.escape(worker)}</td>"
            f"<td>{'-' if score is None else f'{score:.2f}'}</td><td>{'pass' if r['passed'] else 'fail'}</td>"
            f"<td>{html.escape(reason)}</td></tr>"
        )
    h.append("</table>")
    return "".join(h)


def _change(row: dict[str, Any]) -> str:
    pct = row["change_pct"]
    return f"{row['change']:+.4g}" + ("" if pct is None else f" ({pct:+.1f} %)")


def comparison_section(rows: list[dict[str, Any]], gate_failures: list[str], baseline: Path) -> str:
    """Every metric beside the baseline's; the ones that got worse beyond the threshold in red."""
    h = [
        f"<h2>Comparison with {html.escape(str(baseline))}</h2>",
        *(f"<p class='warn'>gate failed: {html.escape(g)}</p>" for g in gate_failures),
        "<table><tr><th class='l'>metric</th><th>baseline</th><th>this run</th><th>change</th><th></th></tr>",
    ]
    for r in rows:
        mark = "<span class='disagree'>worse</span>" if r["worse"] else ""
        h.append(
            f"<tr><td class='l'>{r['metric']}</td><td>{r['baseline']:.4g}</td><td>{r['current']:.4g}</td>"
            f"<td>{_change(r)}</td><td>{mark}</td></tr>"
        )
    h.append("</table>")
    return "".join(h)


def format_comparison(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'metric':<16} {'baseline':>10} {'this run':>10}  change"]
    for r in rows:
        mark = "  WORSE" if r["worse"] else ""
        lines.append(f"{r['metric']:<16} {r['baseline']:>10.4g} {r['current']:>10.4g}  {_change(r)}{mark}")
    return "\n".join(lines)
