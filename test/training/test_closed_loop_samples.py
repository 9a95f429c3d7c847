"""Closed-loop training data (DAgger): the relabeller's samples match the open-loop ones where the drives coincide and
label the expert's way back where a driver strays; `alpamayo-ros collect` writes what `train` reads, and both refuse
what does not fit with one line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from alpamayo_ros.cli import main
from alpamayo_ros.core.decisions import Lateral, Longitudinal, parse_decision
from alpamayo_ros.core.rig import FUTURE_STEPS, STEP_SEC
from alpamayo_ros.sim.closed_loop import ClosedLoopWorld, DriverOutput, ExpertDriver, Observation
from alpamayo_ros.sim.labels import UNSEEN_SPEED_EVIDENCE, rests_on_unseen_speed
from alpamayo_ros.training.closed_loop_samples import (
    ClosedLoopDataError,
    ExpertRelabeller,
    open_closed_loop_data,
    read_manifest,
)
from alpamayo_ros.training.data import DataSpec, Episode, load_episode, load_samples, render_episode, save_episode

SPEC = DataSpec(image_hw=(32, 64), render_wh=(128, 72))
TEST_POLICY_PARAMS = '"/**":\n  ros__parameters:\n    model:\n      backend: test_policy\n'


class VeeringDriver:
    """Holds its speed on a constant left-hand arc: a driver that reads a bend into a straight road."""

    name = "veering"

    def __init__(self, curvature_per_m: float) -> None:
        self.curvature = curvature_per_m

    def plan(self, observation: Observation) -> DriverOutput:
        arc = observation.ego.v_mps * STEP_SEC * np.arange(1, FUTURE_STEPS + 1)
        yaw = self.curvature * arc
        x, y = np.sin(yaw) / self.curvature, (1.0 - np.cos(yaw)) / self.curvature
        return DriverOutput(np.column_stack([x, y, yaw]))


class SpeedingDriver:
    """Keeps its lane and speeds up at a constant rate, past any cruise speed: a driver that overshoots."""

    name = "speeding"

    def __init__(self, accel_mps2: float) -> None:
        self.accel = accel_mps2

    def plan(self, observation: Observation) -> DriverOutput:
        t = STEP_SEC * np.arange(1, FUTURE_STEPS + 1)
        x = observation.ego.v_mps * t + 0.5 * self.accel * t**2
        return DriverOutput(np.column_stack([x, np.zeros_like(x), np.zeros_like(x)]))


def _drive(world: ClosedLoopWorld, driver: object, relabel: ExpertRelabeller) -> None:
    while not world.done:
        obs = world.observe()
        relabel.observe(obs)
        world.step(driver.plan(obs))  # type: ignore[attr-defined]


def test_the_first_sample_is_the_open_loop_one_and_later_ones_follow_the_drivers_states() -> None:
    """At hand-over the world stands where the scenario's own drive stands: the first closed-loop sample equals the
    rendered training sample of that tick (frames, history, future, label). Seed 4 puts the rendered episode's
    sampled ticks (every 4th from 15 + seed mod 4) on the same grid."""
    world = ClosedLoopWorld("lead_vehicle_braking", 4, 6.0, *SPEC.render_wh)
    relabel = ExpertRelabeller(world, SPEC)
    _drive(world, ExpertDriver(world), relabel)
    data = relabel.episode()
    assert data is not None
    opened = render_episode(SPEC, Episode("lead_vehicle_braking", 4, 6.0))
    assert len(data.texts) == len(range(15, world.num_ticks, SPEC.tick_stride)) == len(opened.texts)
    assert data.images.shape == opened.images.shape == (len(data.texts), 7, 1, 32, 64, 3)
    np.testing.assert_array_equal(data.images[0], opened.images[0])
    np.testing.assert_allclose(data.hist_xyz[0], opened.hist_xyz[0], atol=1e-4)
    np.testing.assert_allclose(data.future[0], opened.future[0], atol=0.05)  # the expert replans from the same state
    assert data.texts[0] == opened.texts[0] and data.texts[0].startswith("A lead vehicle")
    assert np.isfinite(data.actions).all() and (np.abs(data.hist_xyz[:, -1]) < 1e-6).all()
    assert not np.array_equal(data.images[-1], data.images[0])  # later samples are later frames


def test_a_straying_driver_gets_the_experts_way_back_as_its_label() -> None:
    """A driver that veers left on a straight road: its samples stand off the lane centre, facing off the road, and
    the expert's plan from there steers back (right), with a label that says so."""
    world = ClosedLoopWorld("free_road", 4, 5.0, *SPEC.render_wh)
    relabel = ExpertRelabeller(world, SPEC)
    _drive(world, VeeringDriver(0.02), relabel)
    data = relabel.episode()
    assert data is not None
    last = len(data.texts) - 1
    assert world.records[-1].d_m > 1.0  # it left the lane centre to the left
    assert data.hist_yaw[last, 0] < -0.1  # 1.5 s ago it headed further right: it has been turning left since
    end = data.future[last, -1]
    assert end[1] < -1.0 and end[2] < -0.05  # the expert's plan ends to the right, heading back right
    assert data.lat[last] == int(Lateral.NUDGE_RIGHT)
    assert "I am to the left of the centre of my lane." in data.texts[last]
    assert data.texts[last].endswith("Shift to the right back to the centre of my lane and accelerate.")
    assert parse_decision(data.texts[last]).lateral is Lateral.NUDGE_RIGHT  # the monitor reads back the label's side
    assert data.lat[0] == int(Lateral.KEEP_LANE)  # at hand-over it was still in its lane


def test_a_recipe_can_leave_out_the_labels_whose_only_cause_is_the_unseen_cruise_speed(tmp_path: Path) -> None:
    """A driver that speeds past the scene's cruise speed on a clear road collects "I am faster than is comfortable
    here" from the expert: nothing in its frames shows that speed. ``load_samples`` with the recipe's filter keeps
    every other sample, each with its own frames and future."""
    world = ClosedLoopWorld("free_road", 4, 9.0, *SPEC.render_wh)
    relabel = ExpertRelabeller(world, SPEC)
    _drive(world, SpeedingDriver(2.5), relabel)
    data = relabel.episode()
    assert data is not None
    unseen = np.asarray([rests_on_unseen_speed(t) for t in data.texts])
    assert 0 < unseen.sum() < len(unseen)
    assert (data.speed[unseen] > world.scenario.v_desired_mps).all()  # said only above the cruise speed
    assert (data.lon[unseen] == int(Longitudinal.DECELERATE)).all()
    assert not any(UNSEEN_SPEED_EVIDENCE in t for t in np.asarray(data.texts)[~unseen])
    path = tmp_path / "speeding.npz"
    save_episode(path, data)
    episode = Episode("free_road", 4, 9.0)
    everything = load_samples([path], [episode])
    kept = load_samples([path], [episode], keep=lambda text: not rests_on_unseen_speed(text))
    assert len(everything) == len(data.texts) and len(kept) == int((~unseen).sum())
    np.testing.assert_array_equal(kept.images, data.images[~unseen])
    np.testing.assert_array_equal(kept.future, data.future[~unseen])
    assert kept.texts == [t for t, u in zip(data.texts, unseen, strict=True) if not u]
    assert kept.scenario == ["free_road"] * len(kept)


def test_a_rollout_sampled_before_its_first_tick_has_no_episode_and_a_world_without_frames_is_refused() -> None:
    world = ClosedLoopWorld("free_road", 0, 2.0, *SPEC.render_wh)
    relabel = ExpertRelabeller(world, SPEC)
    assert relabel.episode() is None
    with pytest.raises(ValueError, match="need the camera frames"):
        ExpertRelabeller(ClosedLoopWorld("free_road", 0, 2.0, render=False), SPEC)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`alpamayo-ros collect`: the deterministic test policy drives one short lead-vehicle rollout at the size a
    recipe with 32 x 64 images trains on."""
    root = tmp_path_factory.mktemp("collect")
    (root / "node.yaml").write_text(TEST_POLICY_PARAMS)
    (root / "recipe.yaml").write_text("image_size: [32, 64]\n")
    out = root / "data"
    argv = ["collect", "--params-file", str(root / "node.yaml"), "--recipe", str(root / "recipe.yaml")]
    argv += ["--scenario", "lead_vehicle_braking", "--seeds", "2", "--seconds", "5", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def test_collect_writes_the_training_format_and_a_manifest_that_names_the_driver(collected: Path) -> None:
    header, episodes = read_manifest(collected)
    assert header["driver"]["model"] and header["data"]["image_hw"] == [32, 64]
    (entry,) = episodes
    assert (entry.scenario, entry.seed, entry.distribution, entry.seconds) == (
        "lead_vehicle_braking",
        2,
        "default",
        5.0,
    )
    data = load_episode(collected / entry.file)
    assert len(data.texts) == entry.samples == math.ceil((50 - 15) / 4)
    assert data.images.shape[1:] == (7, 1, 32, 64, 3) and all(data.texts)
    assert not entry.passed or not entry.failures
    opened = open_closed_loop_data(collected, DataSpec(image_hw=(32, 64)))
    assert opened.samples == entry.samples and opened.summary()["rollouts"] == 1


def test_collect_resumes_and_refuses_what_does_not_fit(collected: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (collected / "manifest.json").read_text()
    argv = ["collect", "--scenario", "lead_vehicle_braking", "--seeds", "2", "--seconds", "5", "--out", str(collected)]
    assert main(argv) == 2  # the default recipe's images are 64 x 128: another format than this directory holds
    assert "holds samples of another format" in capsys.readouterr().err
    root = collected.parent
    same = [*argv, "--params-file", str(root / "node.yaml"), "--recipe", str(root / "recipe.yaml"), "--quiet"]
    assert main(same) == 0  # everything asked for is there already: nothing runs again
    assert "1 rollouts (" in capsys.readouterr().out and (collected / "manifest.json").read_text() == before
    assert main([*argv, "--model", "tiny", "--recipe", str(root / "recipe.yaml")]) == 2  # another driver
    assert "one directory holds one driver's states" in capsys.readouterr().err
    (root / "missing.yaml").write_text('"/**":\n  ros__parameters:\n    model:\n      model_path: /nowhere/ckpt\n')
    assert main(["collect", "--params-file", str(root / "missing.yaml"), "--out", str(root / "never")]) == 1
    err = capsys.readouterr().err
    assert "model load failed" in err and len(err.strip().splitlines()) == 1
    assert (collected / "manifest.json").read_text() == before
    for bad, message in [
        (["--seeds", "899-901"], "seeds from 900 on are held out"),
        (["--seeds", "x"], "expected A-B or A"),
        (["--scenario", "moon_landing"], "unknown scenario 'moon_landing'"),
        (["--seconds", "2"], r"--seconds 2.0: must lie in \[5, 60\]"),
    ]:
        assert main(["collect", "--out", str(collected.parent / "never"), *bad]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not (collected.parent / "never").exists()


def test_training_data_refuses_a_directory_of_another_size_or_with_a_file_missing(collected: Path) -> None:
    with pytest.raises(
        ClosedLoopDataError, match=r"another model size: image_hw \[32, 64\] \(training needs \[64, 128\]\)"
    ):
        open_closed_loop_data(collected, DataSpec())
    with pytest.raises(ClosedLoopDataError, match=r"no manifest.json \(collect it first"):
        open_closed_loop_data(collected.parent, DataSpec())
    broken = collected.parent / "broken"
    broken.mkdir()
    body = json.loads((collected / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(ClosedLoopDataError, match="is listed but missing"):
        open_closed_loop_data(broken, DataSpec(image_hw=(32, 64)))
    (broken / "manifest.json").write_text("{")
    with pytest.raises(ClosedLoopDataError, match=r"unreadable manifest\.json"):
        open_closed_loop_data(broken, DataSpec(image_hw=(32, 64)))


def test_train_refuses_closed_loop_data_of_another_size_before_rendering(collected: Path, tmp_path: Path) -> None:
    import argparse

    from alpamayo_ros.tools import train

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"closed_loop_data: {collected}\n")  # the default 64 x 128 images; the data is 32 x 64
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "o"), "--recipe", str(recipe), "--cache", str(tmp_path / "c")])
    with pytest.raises(SystemExit, match="collected for another model size"):
        train.run(args)
    assert not (tmp_path / "c").exists() and not (tmp_path / "o").exists()
