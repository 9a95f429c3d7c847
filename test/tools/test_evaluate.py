"""Open-loop evaluation: offline with the test policy, recorded predictions, ground truth from odometry."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.tools import bagio
from alpamayo_ros.tools.evaluate import evaluate_bag, future_from_odometry, run_evaluation, summarize


def test_offline_evaluation_with_test_policy(tiny_bag: Path, tmp_path: Path) -> None:
    summary = run_evaluation([tiny_bag], tmp_path, ModelSpec(backend="test_policy"), report_ticks=4, progress=False)
    # 35 anchor frames; the first 15 lack 1.5 s of ego history.
    assert summary["ticks"]["anchor_frames"] == 35
    assert summary["ticks"]["scored"] == 20
    assert sum(summary["ticks"]["skipped"].values()) == 15
    m, b = summary["model_metrics"], summary["baseline_metrics"]
    assert set(m["ade"]) == {"0.5s", "1s", "3s", "5s", "6.4s"}
    assert 0.0 < m["ade"]["0.5s"] < m["ade"]["6.4s"] and b["fde"]["6.4s"] > 0.0
    # the test policy writes reasoning that matches its own trajectory
    assert summary["agreement"]["reasoning_action_agree_rate"] == 1.0
    assert summary["agreement"]["decision_vs_reference"]["ticks"] == 20
    assert json.loads((tmp_path / "metrics.json").read_text())["ticks"]["scored"] == 20
    html = (tmp_path / "report.html").read_text()
    assert "Trajectory error" in html and "constant velocity" in html and "<svg" in html
    assert len(list((tmp_path / "img").glob("*_mosaic.jpg"))) >= 4
    assert len(list((tmp_path / "img").glob("*_front.jpg"))) >= 4


def _predictions_from_ground_truth(scenario_bag: Path, out: Path) -> None:
    """A 'node output' bag whose plans are the ground truth itself (stamped with t0, as the node stamps)."""
    with bagio.BagWriter(out) as writer:
        for rec in bagio.read_bags([scenario_bag], [bagio.GT_PATH_TOPIC, bagio.GT_REASONING_TOPIC]):
            topic = (
                "/alpamayo_node/output/path" if rec.topic == bagio.GT_PATH_TOPIC else "/alpamayo_node/output/reasoning"
            )
            writer.write_raw(topic, rec.typename, rec.log_time_ns + 5_000_000, rec.raw)


def test_recorded_predictions_equal_to_ground_truth_score_zero(tiny_bag: Path, tmp_path: Path) -> None:
    preds = tmp_path / "preds"
    _predictions_from_ground_truth(tiny_bag, preds)
    summary = run_evaluation([tiny_bag], tmp_path / "report", None, predictions=preds, progress=False)
    assert summary["ticks"]["scored"] == 20
    assert summary["model_metrics"]["ade"]["6.4s"] == pytest.approx(0.0, abs=1e-9)
    assert summary["model_metrics"]["fde"]["6.4s"] == pytest.approx(0.0, abs=1e-9)
    assert summary["agreement"]["decision_vs_reference"]["both"] == 1.0
    assert summary["baseline_metrics"]["ade"]["6.4s"] > 0.1  # the baseline does not know the lead brakes


def test_ground_truth_from_odometry_matches_the_recorded_future(tiny_bag: Path) -> None:
    """Bags without /ground_truth/path are scored against their odometry: both must describe the same future."""
    from alpamayo_ros.core.ego_history import OdometryBuffer, make_odom_sample
    from alpamayo_ros.sim import generate

    gen = generate("stationary_vehicle_nudge", 3, 8.0, 16, 16)
    odom = OdometryBuffer(1e9, 1e9)
    for o in gen.odometry():
        odom.add(make_odom_sample(o.stamp_ns, (o.x, o.y, 0.0), (0.0, 0.0, np.sin(o.yaw / 2), np.cos(o.yaw / 2))))
    ticks = list(gen.ticks(render=False))
    assert future_from_odometry(odom, ticks[-1].stamp_ns) is None  # the odometry ends before t0 + 6.4 s
    for tick in ticks[:10]:
        fut = future_from_odometry(odom, tick.stamp_ns)
        assert fut is not None
        assert np.allclose(fut, tick.future[:, :2], atol=1e-6)


class _WrappedModel:
    """A DrivingModel around another one that counts predictions and may change each (``edit``)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    @property
    def info(self) -> Any:
        return self.inner.info

    def predict(self, sample: Any) -> Any:
        pred = self.inner.predict(sample)
        self.calls += 1
        return self.edit(pred)

    def edit(self, pred: Any) -> Any:
        return pred

    def close(self) -> None:
        self.inner.close()


class _NaNOnSecondCall(_WrappedModel):
    """The second prediction has NaN waypoints (what check_prediction must stop)."""

    def edit(self, pred: Any) -> Any:
        if self.calls == 2:
            xyz = pred.xyz.copy()
            xyz[0, 10:20] = np.nan
            pred = dataclasses.replace(pred, xyz=xyz)
        return pred


def test_a_prediction_failing_the_node_sanity_gate_is_a_model_failure_not_scored(tiny_bag: Path) -> None:
    from alpamayo_ros.core.types import DrivingModel
    from alpamayo_ros.runtime.registry import load_model

    model = _NaNOnSecondCall(load_model(ModelSpec(backend="test_policy")))
    assert isinstance(model, DrivingModel)
    result = evaluate_bag(tiny_bag, model, report_ticks=0, progress=False)
    assert model.calls == 20
    assert result.model_failures == {"model output contains NaN/Inf": 1}
    assert len(result.ticks) == 19
    summary = summarize([result], {})
    assert summary["model_failures"] == {"count": 1, "reasons": {"model output contains NaN/Inf": 1}}
    assert summary["ticks"]["skipped"]["model failure: model output contains NaN/Inf"] == 1
    assert summary["ticks"]["scored"] == 19
    for table in summary["model_metrics"].values():
        assert all(math.isfinite(v) for v in table.values())
    assert all(math.isfinite(v) for t in summary["per_tick"] for v in t["ade"].values())


def test_evaluate_uses_the_node_parameters(tiny_bag: Path, tmp_path: Path) -> None:
    """The node's settings reach the evaluation's tick (a fill policy plans on the same anchor frames), and a
    parameter file gives the same result as the same values set in code."""
    from alpamayo_ros.core import params as P
    from alpamayo_ros.runtime.registry import load_model

    model = load_model(ModelSpec(backend="test_policy"))
    default = evaluate_bag(tiny_bag, model, report_ticks=0, progress=False)
    assert len(default.ticks) == 20
    lagging = P.replace(P.NodeParams(), {"sync.tolerance_sec": 0.001, "sync.missing_camera_policy": "black"})
    filled = evaluate_bag(tiny_bag, model, params=lagging, report_ticks=0, progress=False)
    assert [t.t0_ns for t in filled.ticks] == [t.t0_ns for t in default.ticks]  # frames share their stamps
    params_file = tmp_path / "node.yaml"
    params_file.write_text('"/**":\n  ros__parameters:\n    ego:\n      max_extrapolation_sec: 0.0\n')
    from_file = evaluate_bag(tiny_bag, model, params=P.load_params_file(params_file), report_ticks=0, progress=False)
    in_code = evaluate_bag(
        tiny_bag, model, params=P.replace(P.NodeParams(), {"ego.max_extrapolation_sec": 0.0}), progress=False
    )
    assert [t.t0_ns for t in from_file.ticks] == [t.t0_ns for t in in_code.ticks]
    assert from_file.skipped == in_code.skipped


class _UnsureWhenWrong(_WrappedModel):
    """The test policy's trajectories with scripted reasoning for the braking-lead bag (reference: follow on the first
    two ticks, then decelerate): "Stop" on odd ticks with token probabilities of 0.3, "Decelerate" with certainty on
    even ones."""

    def edit(self, pred: Any) -> Any:
        n = pred.num_samples
        if self.calls % 2:
            return dataclasses.replace(
                pred, reasoning=("Stop and keep the lane.",) * n, token_logprobs=(np.log(np.full(6, 0.3)),) * n
            )
        sure = (np.zeros(9),) * n
        return dataclasses.replace(pred, reasoning=("Decelerate and keep the lane.",) * n, token_logprobs=sure)


def test_reasoning_uncertainty_is_scored_against_wrong_decisions(tiny_bag: Path) -> None:
    from alpamayo_ros.runtime.registry import load_model

    plain = summarize([evaluate_bag(tiny_bag, load_model(ModelSpec(backend="test_policy")), progress=False)], {})
    assert plain["uncertainty"] is None and all(t["uncertainty"] is None for t in plain["per_tick"])
    result = evaluate_bag(tiny_bag, _UnsureWhenWrong(load_model(ModelSpec(backend="test_policy"))), progress=False)
    summary = summarize([result], {})
    unc = summary["uncertainty"]
    assert [t["uncertainty"] for t in summary["per_tick"][:2]] == pytest.approx([0.7, 0.0])
    assert unc["ticks"] == unc["scored_decisions"] == 20 and unc["mean"] == pytest.approx(0.35)
    wrong = [t["stated"] != t["reference"] for t in summary["per_tick"]]
    assert unc["wrong_decisions"] == sum(wrong) == 11  # every "Stop", and the sure "Decelerate" while following
    # 10 unsure wrong ones rank above the 9 sure right ones; the sure wrong one ties with them (counts half)
    assert unc["auroc_decision_wrong"] == pytest.approx((10 * 9 + 0.5 * 9) / (11 * 9))
    # the node's warning at its default threshold (0.1) flags the 10 unsure wrong ones and none of the right ones
    assert (unc["warn_at"], unc["flagged_right"], unc["flagged_wrong"]) == (0.1, 0.0, pytest.approx(10 / 11))
    lax = summarize([result], {}, uncertainty_warn=0.8)["uncertainty"]
    assert (lax["warn_at"], lax["flagged_right"], lax["flagged_wrong"]) == (0.8, 0.0, 0.0)
