"""Comparison with a baseline run and release gates over the figures of metrics.json.

Named metrics (each with the direction in which it gets worse): ``ade_<h>``, ``fde_<h>``, ``min_ade_<h>``,
``min_fde_<h>`` for h in 0.5s 1s 3s 5s 6.4s (metres, model), ``model_failures`` (ticks), ``failed_bags`` (bags that
failed after their retries), ``agreement`` (reasoning-action agreement rate), ``decision_both`` / ``decision_lon`` /
``decision_lat`` (decision = reference label rate) and ``latency_p50`` / ``latency_p90`` (ms).

A gate is ``NAME:OP`` with OP one of ``+5%`` (worse than the baseline by more than 5 % of the baseline value),
``+0.2`` (worse than the baseline by more than 0.2, absolute), ``>X`` (current value above X) or ``<X`` (below X).
``--fail-on`` takes gates separated by commas; ``+`` gates need ``--baseline``. Without a gate of its own, a metric
is marked worse when it moved in its bad direction by more than ``MARK_RELATIVE`` of the baseline (counts: by any;
latencies: also by more than ``LATENCY_MARK_MS``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alpamayo_ros.tools.metrics import HORIZONS_SEC

MARK_RELATIVE = 0.01  # a 1 % move in the bad direction is marked in the comparison table
LATENCY_MARK_MS = 5.0  # latencies are wall clock (other load on the machine): smaller moves are not marked


class GateError(ValueError):
    """A --fail-on entry that cannot be read (one line, naming the entry)."""


@dataclass(frozen=True)
class Metric:
    name: str
    get: Callable[[dict[str, Any]], float | None]
    higher_is_worse: bool
    count: bool = False  # integer counts: any move in the bad direction is marked
    mark_floor: float = 0.0  # smallest move marked whatever the percentage (wall-clock noise of latencies)


def _at(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def get(summary: dict[str, Any]) -> float | None:
        node: Any = summary
        for key in path:
            if not isinstance(node, dict) or node.get(key) is None:
                return None
            node = node[key]
        return float(node)

    return get


def _metrics() -> dict[str, Metric]:
    table: list[Metric] = []
    for family in ("ade", "fde", "min_ade", "min_fde"):
        for h in HORIZONS_SEC:
            label = f"{h:g}s"
            table.append(Metric(f"{family}_{label}", _at("model_metrics", family, label), higher_is_worse=True))
    table += [
        Metric("model_failures", _at("model_failures", "count"), higher_is_worse=True, count=True),
        Metric("failed_bags", _at("fleet", "bags_failed"), higher_is_worse=True, count=True),
        Metric("agreement", _at("agreement", "reasoning_action_agree_rate"), higher_is_worse=False),
        Metric("decision_both", _at("agreement", "decision_vs_reference", "both"), higher_is_worse=False),
        Metric("decision_lon", _at("agreement", "decision_vs_reference", "longitudinal"), higher_is_worse=False),
        Metric("decision_lat", _at("agreement", "decision_vs_reference", "lateral"), higher_is_worse=False),
        Metric("latency_p50", _at("latency_ms", "p50"), higher_is_worse=True, mark_floor=LATENCY_MARK_MS),
        Metric("latency_p90", _at("latency_ms", "p90"), higher_is_worse=True, mark_floor=LATENCY_MARK_MS),
    ]
    return {m.name: m for m in table}


METRICS = _metrics()
_GATE = re.compile(r"^(?P<name>[a-z0-9_.]+):(?P<op>\+|>|<)(?P<value>[0-9]*\.?[0-9]+)(?P<pct>%?)$")


@dataclass(frozen=True)
class Gate:
    metric: Metric
    op: str  # "+" (worse than baseline by more than value), ">" or "<" (current value against value)
    value: float
    relative: bool  # "+" only: value is a fraction of the baseline

    @property
    def text(self) -> str:
        if self.op == "+" and self.relative:
            return f"{self.metric.name}:+{100 * self.value:g}%"
        return f"{self.metric.name}:{self.op}{self.value:g}"


def parse_gates(text: str) -> list[Gate]:
    """``ade_6.4s:+5%,model_failures:>0`` -> gates; GateError naming the first bad entry."""
    gates = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        m = _GATE.match(item)
        if m is None:
            raise GateError(f"--fail-on {item!r}: expected NAME:+N%, NAME:+N, NAME:>N or NAME:<N")
        name, op, pct = m["name"], m["op"], m["pct"]
        if name not in METRICS:
            raise GateError(f"--fail-on {item!r}: unknown metric {name!r} (known: {', '.join(METRICS)})")
        if pct and op != "+":
            raise GateError(f"--fail-on {item!r}: a percentage is a change against the baseline: use {name}:+N%")
        value = float(m["value"]) / (100.0 if pct else 1.0)
        gates.append(Gate(METRICS[name], op, value, relative=bool(pct)))
    return gates


def _worse_by(metric: Metric, base: float, cur: float) -> float:
    """How far the metric moved in its bad direction (negative: it improved)."""
    return cur - base if metric.higher_is_worse else base - cur


def check_gate(gate: Gate, current: dict[str, Any], baseline: dict[str, Any] | None) -> str | None:
    """None when the gate holds, else one line saying why it fails."""
    cur = gate.metric.get(current)
    if cur is None or math.isnan(cur):
        return f"{gate.text}: {gate.metric.name} not available in this run"
    if gate.op == ">":
        return f"{gate.text}: {gate.metric.name} = {cur:g}" if cur > gate.value else None
    if gate.op == "<":
        return f"{gate.text}: {gate.metric.name} = {cur:g}" if cur < gate.value else None
    base = gate.metric.get(baseline) if baseline is not None else None
    if base is None:
        return f"{gate.text}: needs a --baseline run that has {gate.metric.name}"
    worse = _worse_by(gate.metric, base, cur)
    limit = gate.value * abs(base) if gate.relative else gate.value
    return f"{gate.text}: {gate.metric.name} {base:g} -> {cur:g}" if worse > limit else None


def compare(current: dict[str, Any], baseline: dict[str, Any], gates: list[Gate]) -> list[dict[str, Any]]:
    """One row per metric present in both runs: values, change, and whether it is marked worse."""
    gated = {g.metric.name for g in gates if g.op == "+"}
    rows = []
    for metric in METRICS.values():
        cur, base = metric.get(current), metric.get(baseline)
        if cur is None or base is None:
            continue
        worse = _worse_by(metric, base, cur)
        threshold = 0.0 if metric.count else max(MARK_RELATIVE * abs(base), metric.mark_floor)
        rows.append(
            {
                "metric": metric.name,
                "baseline": base,
                "current": cur,
                "change": cur - base,
                "change_pct": None if base == 0 else 100.0 * (cur - base) / abs(base),
                "worse": worse > threshold,
                "gated": metric.name in gated,
            }
        )
    return rows
