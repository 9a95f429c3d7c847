"""The proxy evaluation groups its ticks by the cause the reference label gives, and says what the driver saw instead
where it decided wrong: which scenes a driver fails on, not only which scenario kinds."""

from __future__ import annotations

import numpy as np
import pytest
from evaluate_driver import NO_EVIDENCE, by_cause, cause_markdown, evaluate_samples, first_evidence

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.runtime.torch_backend import load_torch_model
from alpamayo_ros.training.data import DataSpec, Episode, SampleSet, render_episode

CLEAR = "The lane ahead is clear. I should keep my speed. Keep the lane and keep a steady speed."
RED_NEAR = "The traffic light ahead is red and the stop line is 12 m away. I must stop at the stop line. Keep the lane and come to a stop."  # noqa: E501
RED_FAR = "The traffic light ahead is red and the stop line is 40 m away. I must stop at the stop line. Keep the lane and come to a stop."  # noqa: E501
WAITING = "A pedestrian is waiting at the crosswalk 84 m ahead. I should slow down in case they cross. Keep the lane and decelerate."  # noqa: E501
RED = "The traffic light ahead is red and the stop line is # m away."


def test_first_evidence_masks_the_numbers_and_names_a_reasoning_without_evidence() -> None:
    assert first_evidence(RED_NEAR) == first_evidence(RED_FAR) == RED
    assert first_evidence("I must stop. Keep the lane and come to a stop.") == NO_EVIDENCE
    assert first_evidence("") == NO_EVIDENCE


def test_ticks_are_grouped_by_the_labels_cause_with_what_the_driver_said_where_it_was_wrong() -> None:
    ticks = [
        (first_evidence(CLEAR), first_evidence(CLEAR), True),
        (first_evidence(CLEAR), first_evidence(WAITING), False),
        (first_evidence(CLEAR), first_evidence(WAITING), False),
        (first_evidence(CLEAR), first_evidence("garbled"), False),
        (first_evidence(RED_NEAR), first_evidence(RED_FAR), True),
        (first_evidence(RED_FAR), first_evidence(CLEAR), False),
    ]
    groups = by_cause(ticks, said=1)
    assert list(groups) == ["The lane ahead is clear.", RED]  # most ticks first
    clear, red = groups["The lane ahead is clear."], groups[RED]
    assert clear["ticks"] == 4 and clear["share"] == pytest.approx(4 / 6)
    assert clear["decision_acc_both"] == pytest.approx(0.25)
    assert clear["said_when_wrong"] == {"A pedestrian is waiting at the crosswalk # m ahead.": 2}  # the top one only
    assert red["ticks"] == 2 and red["decision_acc_both"] == pytest.approx(0.5)
    assert red["said_when_wrong"] == {"The lane ahead is clear.": 1}
    table = cause_markdown(groups).splitlines()
    assert len(table) == 4
    assert table[2] == (
        "| The lane ahead is clear. | 4 (67 %) | 25 % | A pedestrian is waiting at the crosswalk # m ahead. (2) |"
    )


def test_the_groups_of_a_real_proxy_run_add_up_to_its_decision_accuracy() -> None:
    """The shipped driver on the rendered ticks of one short red-light episode: every tick lands in the group of its
    own label's cause, and the groups' accuracies weigh up to the run's own "all" row."""
    d = render_episode(DataSpec(tick_stride=8), Episode("red_light_stop_line", 2, 8.0))
    data = SampleSet(
        d.images, d.hist_xyz, d.hist_yaw, d.future, d.actions, d.speed, d.lon, d.lat, d.texts, ["red"] * len(d.texts)
    )
    model = load_torch_model(ModelSpec(model_path="default", device="cpu", seed=0))
    try:
        rows, groups = evaluate_samples(model, data, progress=False)
    finally:
        model.close()
    assert set(groups) == {first_evidence(text) for text in data.texts}
    assert sum(g["ticks"] for g in groups.values()) == len(data) == rows["all"]["ticks"]
    weighted = sum(g["decision_acc_both"] * g["ticks"] for g in groups.values()) / len(data)
    assert weighted == pytest.approx(rows["all"]["decision_acc_both"])
    for group in groups.values():
        wrong = round((1.0 - group["decision_acc_both"]) * group["ticks"])
        assert sum(group["said_when_wrong"].values()) <= wrong
        assert (sum(group["said_when_wrong"].values()) > 0) == (wrong > 0)
    assert np.isfinite(rows["all"]["ade_6.4s"])
