"""Gates and the baseline comparison over metrics.json figures (pure: no model, no bag)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from alpamayo_ros.tools.fleet.gates import GateError, check_gate, compare, parse_gates


def _summary(ade: float, failures: int = 0, agree: float | None = 0.95) -> dict[str, Any]:
    table = {h: ade * k for k, h in enumerate(("0.5s", "1s", "3s", "5s", "6.4s"), start=1)}
    return {
        "model_metrics": {"ade": table, "fde": dict(table), "min_ade": dict(table), "min_fde": dict(table)},
        "model_failures": {"count": failures, "reasons": {}},
        "agreement": {
            "reasoning_action_agree_rate": agree,
            "decision_vs_reference": {"both": 0.9, "longitudinal": 0.9, "lateral": 1.0},
        },
        "latency_ms": None,
        "fleet": {"bags_failed": 0},
    }


def test_gate_syntax() -> None:
    gates = parse_gates("ade_6.4s:+5%, model_failures:>0,agreement:<0.9,fde_3s:+0.25")
    assert [g.text for g in gates] == ["ade_6.4s:+5%", "model_failures:>0", "agreement:<0.9", "fde_3s:+0.25"]
    assert gates[0].relative and gates[0].value == pytest.approx(0.05)
    assert not gates[3].relative and gates[3].value == 0.25
    assert parse_gates("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ade_7s:+5%", "unknown metric 'ade_7s'"),
        ("ade_6.4s:5%", "expected NAME:+N%"),
        ("ade_6.4s", "expected NAME:+N%"),
        ("model_failures:>5%", "a percentage is a change against the baseline"),
        ("ade_6.4s:+5%,,fde_1s:+x", "'fde_1s:+x'"),
    ],
)
def test_bad_gates_are_named(text: str, message: str) -> None:
    with pytest.raises(GateError, match=r"^--fail-on ") as err:
        parse_gates(text)
    assert message in str(err.value)


def test_relative_gate_fails_only_beyond_its_threshold() -> None:
    (gate,) = parse_gates("ade_6.4s:+5%")
    base = _summary(1.0)  # ade@6.4s = 5.0
    assert check_gate(gate, _summary(1.04), base) is None  # +4 %
    failed = check_gate(gate, _summary(1.06), base)  # +6 %
    assert failed is not None and failed.startswith("ade_6.4s:+5%: ade_6.4s 5 -> 5.3")
    assert check_gate(gate, _summary(0.5), base) is None  # better
    assert "needs a --baseline" in (check_gate(gate, _summary(1.0), None) or "")


def test_threshold_gates_and_direction_of_rates() -> None:
    failures, agreement = parse_gates("model_failures:>0,agreement:+0.02")
    assert check_gate(failures, _summary(1.0, failures=0), None) is None
    assert check_gate(failures, _summary(1.0, failures=2), None) == "model_failures:>0: model_failures = 2"
    # agreement gets worse downwards: a drop of 0.03 fails a +0.02 gate, a rise does not
    base = _summary(1.0, agree=0.95)
    assert check_gate(agreement, _summary(1.0, agree=0.92), base) is not None
    assert check_gate(agreement, _summary(1.0, agree=0.99), base) is None
    assert "not available" in (check_gate(agreement, _summary(1.0, agree=None), base) or "")


def test_comparison_marks_every_metric_that_got_worse() -> None:
    base = _summary(1.0, failures=0, agree=0.95)
    cur = copy.deepcopy(base)
    cur["model_metrics"]["ade"]["6.4s"] *= 1.10  # worse
    cur["model_metrics"]["fde"]["3s"] *= 0.5  # better
    cur["model_metrics"]["min_ade"]["1s"] *= 1.005  # within the 1 % marking threshold
    cur["model_failures"]["count"] = 1  # a count: any increase is marked
    cur["agreement"]["reasoning_action_agree_rate"] = 0.90  # rates get worse downwards
    rows = {r["metric"]: r for r in compare(cur, base, parse_gates("ade_6.4s:+5%"))}
    worse = sorted(name for name, r in rows.items() if r["worse"])
    assert worse == ["ade_6.4s", "agreement", "model_failures"]
    assert rows["ade_6.4s"]["change_pct"] == pytest.approx(10.0) and rows["ade_6.4s"]["gated"]
    assert rows["model_failures"]["change_pct"] is None  # baseline 0
    assert "latency_p50" not in rows  # not in either run


def test_latency_noise_below_the_floor_is_not_marked() -> None:
    base = _summary(1.0)
    base["latency_ms"] = {"p50": 0.05, "p90": 80.0}
    cur = copy.deepcopy(base)
    cur["latency_ms"] = {"p50": 0.07, "p90": 90.0}  # +40 % of almost nothing; +10 ms
    rows = {r["metric"]: r for r in compare(cur, base, [])}
    assert not rows["latency_p50"]["worse"] and rows["latency_p90"]["worse"]
