"""alpamayo-ros sim: the node drives the closed-loop world over real DDS (lockstep) and in process; the reference
drivers; the outputs (metrics, JUnit, report, bag); bad input and a node that never comes up."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from sim_runs import world_tracks

from alpamayo_ros.cli import main as cli_main
from alpamayo_ros.core.builders import build_path
from alpamayo_ros.tools import bagio, sim
from alpamayo_ros.tools.sim_loop import NodeRolloutStats, _take
from alpamayo_ros.tools.sim_messages import PlanFormatError, plan_poses

T0 = 1_767_225_602_000_000_000


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    return parser.parse_args(["--out", str(tmp_path / "out"), "--width", "96", "--height", "54", *extra])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "moon_landing"], "unknown scenario 'moon_landing'"),
        (["--seconds", "1"], "--seconds 1.0 is too short"),
        (["--transport", "inprocess", "--realtime"], "drop --transport inprocess"),
        (["--params-file", "/nonexistent.yaml"], "--params-file /nonexistent.yaml: no such file"),
        (["--set", "lighting=sunset"], "lighting"),
        (["--set", "warp_speed=9"], "warp_speed"),
        (["--set", "lighting"], "--set expects key=value"),
    ],
)
def test_bad_command_lines_are_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["sim", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_output_folder_under_a_file_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    assert cli_main(["sim", "--out", str(tmp_path / "file" / "sim")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"alpamayo-ros sim: --out {tmp_path / 'file' / 'sim'}: {tmp_path / 'file'} is a file, not a directory"


def test_a_plan_the_world_cannot_follow_is_counted_not_followed(tmp_path: Path) -> None:
    xyz = np.zeros((64, 3))
    xyz[:, 0] = np.arange(1, 65) * 0.5
    good = build_path(xyz, np.broadcast_to(np.eye(3), (64, 3, 3)), T0, "base_link")
    assert np.allclose(plan_poses(good)[:, 0], xyz[:, 0]) and np.allclose(plan_poses(good)[:, 2], 0.0)
    short = build_path(xyz[:10], np.broadcast_to(np.eye(3), (10, 3, 3)), T0, "base_link")
    with pytest.raises(PlanFormatError, match="10 poses, expected 64"):
        plan_poses(short)
    nan = build_path(np.full((64, 3), np.nan), np.broadcast_to(np.eye(3), (64, 3, 3)), T0, "base_link")
    wrong_frame = build_path(xyz, np.broadcast_to(np.eye(3), (64, 3, 3)), T0, "map")
    stats = NodeRolloutStats()
    with bagio.BagWriter(tmp_path / "bag") as bag:
        from rclpy.serialization import serialize_message

        for path in (nan, wrong_frame):
            output, t0 = _take(SimpleNamespace(path=path, reasoning=None), "base_link", stats, bag, serialize_message)
            assert output is None and t0 is None
        output, t0 = _take(SimpleNamespace(path=good, reasoning=None), "base_link", stats, bag, serialize_message)
    assert output is not None and t0 == pytest.approx(2.0)
    assert stats.invalid == {
        "plan has non-finite poses": 1,
        "plan in frame 'map', expected 'base_link' (the ego at t0)": 1,
    }


def test_reference_drivers_and_the_outputs(tmp_path: Path) -> None:
    args = _args(tmp_path, "--scenario", "lead_vehicle_braking", "--seconds", "6")
    results = sim.run_suite(args, sim.NodeParams(), ("lead_vehicle_braking",), (1000,), ("expert", "constant_velocity"))
    from alpamayo_ros.tools.sim_report import write_outputs

    write_outputs(args.out, results)
    by_driver = {r.driver: r for r in results}
    assert by_driver["expert"].passed and by_driver["expert"].metrics is not None
    assert by_driver["expert"].metrics["progress_ratio"] == 1.0
    suite = ET.parse(args.out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"seed1000.expert", "seed1000.constant_velocity"}
    assert (args.out / "rollouts" / "lead_vehicle_braking_s1000_expert" / "birdseye.gif").is_file()
    summary = json.loads((args.out / "metrics.json").read_text())
    assert set(summary["drivers"]) == {"expert", "constant_velocity"}
    assert "Closed-loop simulation" in (args.out / "report.html").read_text()


def test_rollouts_on_another_distribution_record_where_their_scenes_came_from(tmp_path: Path) -> None:
    argv = ["--distribution", "shifted", "--set", "lanes_each_way=1", "--seconds", "4", "--driver", "expert"]
    assert cli_main(["sim", "--out", str(tmp_path / "out"), "--no-report", *argv]) == 0
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["scenes"] == {"distribution": "shifted", "overrides": {"lanes_each_way": 1}}
    assert [(r["scenario"], r["driver"], r["passed"]) for r in summary["rollouts"]] == [
        ("pedestrian_crossing", "expert", True)
    ]


@pytest.mark.parametrize("quiet", [False, True])
def test_no_progress_silences_the_rollout_bar_of_a_single_machine_suite(
    quiet: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sim", "--out", str(tmp_path / "out"), "--no-report", "--scenario", "free_road", "--seconds", "4"]
    assert cli_main([*argv, "--driver", "expert", *(["--no-progress"] if quiet else [])]) == 0
    assert ("rollout" in capsys.readouterr().err) != quiet


@pytest.mark.ros
@pytest.mark.slow
def test_dds_and_in_process_rollouts_are_identical_with_the_test_policy(tmp_path: Path) -> None:
    """The unchanged node over DDS in lockstep, and the same tick functions in process: same plans, same world.
    Two rollouts on one node: the second starts at the first one's stamps, and the node takes it as a new start."""
    params = tmp_path / "node.yaml"
    params.write_text('"/**":\n  ros__parameters:\n    model:\n      backend: test_policy\n')
    common = ["sim", "--suite", "smoke", "--driver", "node", "--seconds", "3", "--width", "96", "--height", "54"]
    common += ["--params-file", str(params), "--no-report", "--no-progress"]
    assert cli_main([*common, "--transport", "inprocess", "--out", str(tmp_path / "inprocess")]) == 0
    assert cli_main([*common, "--transport", "dds", "--out", str(tmp_path / "dds")]) == 0
    inprocess, dds = world_tracks(tmp_path / "inprocess"), world_tracks(tmp_path / "dds")
    assert len(dds) == 2 and all(len(track) > 100 for track in dds.values()) and inprocess == dds
    for a, b in zip(_rollout_metrics(tmp_path / "inprocess"), _rollout_metrics(tmp_path / "dds"), strict=True):
        assert a["missed_plans"] == b["missed_plans"] == 0 and a["progress_m"] == b["progress_m"]
    node_dir = tmp_path / "dds" / "node"  # one node drove both rollouts
    subscribed = yaml.safe_load((node_dir / "node_params.yaml").read_text())["/**"]["ros__parameters"]
    assert subscribed["ego"]["odometry_reliability"] == "reliable"  # lockstep loses no input: reliable QoS
    assert {cam["reliability"] for cam in subscribed["cameras"].values()} == {"reliable"}
    log = (node_dir / "node.log").read_text()
    assert "far behind" not in log and "jumped backwards" not in log, log  # no message of rollout 2 dropped


def _rollout_metrics(out: Path) -> list[dict[str, Any]]:
    return [r["metrics"] for r in json.loads((out / "metrics.json").read_text())["rollouts"]]


@pytest.mark.ros
@pytest.mark.slow
def test_short_rollout_over_dds_with_the_default_driver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CI's closed loop: the shipped small driver in the real node, a few seconds of a braking lead vehicle."""
    out = tmp_path / "out"
    argv = ["sim", "--scenario", "lead_vehicle_braking", "--seed", "1000", "--seconds", "3.5", "--out", str(out)]
    assert cli_main([*argv, "--width", "160", "--height", "90"]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    (rollout,) = summary["rollouts"]
    m = rollout["metrics"]
    assert rollout["driver"] == "node" and not rollout["error"]
    assert m["ticks"] == 20 and m["missed_plans"] <= 2 and m["plans_compared"] >= 15
    assert not m["collision_at_fault"] and m["latency_ms_p50"] > 0.0
    case = ET.parse(out / "junit.xml").getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == "seed1000.node"
    assert (out / "rollouts" / "lead_vehicle_braking_s1000_node" / "birdseye.gif").is_file()
    bag = out / "rollouts" / "lead_vehicle_braking_s1000_node" / "bag"
    topics = {t.topic for t in bagio.bag_topics(bag)}
    assert {"/alpamayo_node/output/path", "/alpamayo_node/output/reasoning", bagio.ODOM_TOPIC, bagio.TF_TOPIC} <= topics
    assert "lead_vehicle_braking" in capsys.readouterr().out


@pytest.mark.ros
@pytest.mark.slow
def test_a_node_that_never_comes_up_is_an_error_not_a_hang(tmp_path: Path) -> None:
    params = tmp_path / "node.yaml"
    params.write_text('"/**":\n  ros__parameters:\n    model:\n      model_path: /nonexistent/checkpoint\n')
    out = tmp_path / "out"
    argv = ["sim", "--seconds", "2", "--params-file", str(params), "--out", str(out), "--startup-timeout", "15"]
    assert cli_main(argv) == 1
    (rollout,) = json.loads((out / "metrics.json").read_text())["rollouts"]
    assert "did not come up within 15 s" in rollout["error"] and "node.log" in rollout["error"]
    error = ET.parse(out / "junit.xml").getroot().find("testsuite/testcase/error")
    assert error is not None and "did not come up" in (error.get("message") or "")
