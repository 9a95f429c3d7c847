"""Comparison with a baseline run and release gates over the figures of metrics.json.

Named metrics of ``evaluate`` (``EVALUATE_METRICS``, each with the direction in which it gets worse): ``ade_<h>``,
``fde_<h>``, ``min_ade_<h>``, ``min_fde_<h>`` for h in 0.5s 1s 3s 5s 6.4s (metres, model), ``model_failures``
(ticks), ``failed_bags`` (bags that failed after their retries), ``agreement`` (reasoning-action agreement rate),
``decision_both`` / ``decision_lon`` / ``decision_lat`` (decision = reference label rate) and ``latency_p50`` /
``latency_p90`` (ms).

Named metrics of ``sim`` (``SIM_METRICS``), over the rollouts of the driver under test (``node``; the expert and
constant velocity are the bounds it is measured against, not what a release changes), named as ``sim.metrics``
names them: ``collision_at_fault``, ``collisions`` (any contact), ``close_encounters``, ``red_light_violations``,
``offroad`` (rollouts where it happened), ``errors`` (rollouts the node could not drive), ``failed_rollouts``
(failed after their retries, any driver), ``missed_plans`` / ``invalid_plans`` (ticks, summed), ``pass_rate``,
``scene_score``, ``progress`` (progress relative to the expert) and ``agreement`` (reasoning-action agreement), means
over the rollouts.

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


def _evaluate_metrics() -> dict[str, Metric]:
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


EVALUATE_METRICS = _evaluate_metrics()
SIM_DRIVER_UNDER_TEST = "node"


def _node_rollouts(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in summary.get("rollouts", []) if r.get("driver") == SIM_DRIVER_UNDER_TEST]


def _rollouts_with(flag: str) -> Callable[[dict[str, Any]], float | None]:
    """How many of the node's rollouts have ``flag`` set in their metrics (None: no node rollout in the run)."""

    def get(summary: dict[str, Any]) -> float | None:
        rows = _node_rollouts(summary)
        return float(sum(bool((r["metrics"] or {}).get(flag)) for r in rows)) if rows else None

    return get


def _rollout_sum(key: str) -> Callable[[dict[str, Any]], float | None]:
    def get(summary: dict[str, Any]) -> float | None:
        rows = _node_rollouts(summary)
        return float(sum((r["metrics"] or {}).get(key) or 0 for r in rows)) if rows else None

    return get


def _rollout_mean(key: str) -> Callable[[dict[str, Any]], float | None]:
    """Mean of a per-rollout figure over the node's rollouts that have it (the driver's total of the same name)."""

    def get(summary: dict[str, Any]) -> float | None:
        values = [float(v) for r in _node_rollouts(summary) if (v := (r["metrics"] or {}).get(key)) is not None]
        return sum(values) / len(values) if values else None

    return get


def _pass_rate(summary: dict[str, Any]) -> float | None:
    rows = _node_rollouts(summary)
    return sum(bool(r["passed"]) for r in rows) / len(rows) if rows else None


def _errors(summary: dict[str, Any]) -> float | None:
    rows = _node_rollouts(summary)
    return float(sum(bool(r["error"]) for r in rows)) if rows else None


def _sim_metrics() -> dict[str, Metric]:
    table = [
        Metric(name, _rollouts_with(flag), higher_is_worse=True, count=True)
        for name, flag in (
            ("collision_at_fault", "collision_at_fault"),
            ("collisions", "collision_any"),
            ("close_encounters", "close_encounter"),
            ("red_light_violations", "red_light_violation"),
            ("offroad", "offroad"),
        )
    ]
    table += [
        Metric("errors", _errors, higher_is_worse=True, count=True),
        Metric("failed_rollouts", _at("fleet", "rollouts_failed"), higher_is_worse=True, count=True),
        Metric("missed_plans", _rollout_sum("missed_plans"), higher_is_worse=True, count=True),
        Metric("invalid_plans", _rollout_sum("invalid_plans"), higher_is_worse=True, count=True),
        Metric("pass_rate", _pass_rate, higher_is_worse=False),
        Metric("scene_score", _rollout_mean("scene_score"), higher_is_worse=False),
        Metric("progress", _rollout_mean("progress_ratio"), higher_is_worse=False),
        Metric("agreement", _rollout_mean("reasoning_action_agreement"), higher_is_worse=False),
    ]
    return {m.name: m for m in table}


SIM_METRICS = _sim_metrics()
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


def parse_gates(text: str, metrics: dict[str, Metric] = EVALUATE_METRICS) -> list[Gate]:
    """``ade_6.4s:+5%,model_failures:>0`` -> gates over ``metrics``; GateError naming the first bad entry."""
    gates = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        m = _GATE.match(item)
        if m is None:
            raise GateError(f"--fail-on {item!r}: expected NAME:+N%, NAME:+N, NAME:>N or NAME:<N")
        name, op, pct = m["name"], m["op"], m["pct"]
        if name not in metrics:
            raise GateError(f"--fail-on {item!r}: unknown metric {name!r} (known: {', '.join(metrics)})")
        if pct and op != "+":
            raise GateError(f"--fail-on {item!r}: a percentage is a change against the baseline: use {name}:+N%")
        value = float(m["value"]) / (100.0 if pct else 1.0)
        gates.append(Gate(metrics[name], op, value, relative=bool(pct)))
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


def compare(
    current: dict[str, Any],
    baseline: dict[str, Any],
    gates: list[Gate],
    metrics: dict[str, Metric] = EVALUATE_METRICS,
) -> list[dict[str, Any]]:
    """One row per metric of ``metrics`` present in both runs: values, change, and whether it is marked worse."""
    gated = {g.metric.name for g in gates if g.op == "+"}
    rows = []
    for metric in metrics.values():
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
