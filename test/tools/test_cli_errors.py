"""Bad input to the CLIs, as a user types it: one line naming what was wrong, a non-zero exit, never a traceback.

Each case checks its line before any model loads: the checks run in the tools' ``run()`` functions, so a typo costs
a second, not a model load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alpamayo_ros.cli import main
from alpamayo_ros.tools import bagio

ALPAMAYO_ROS = str(Path(sys.executable).parent / "alpamayo-ros")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """cli.main in this process (argparse errors exit through SystemExit); returns (exit code, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", ["evaluate", "play"])
@pytest.mark.parametrize("case", ["missing", "empty", "file", "no metadata", "corrupt", "no mcap", "truncated"])
def test_a_path_that_is_not_a_bag(
    command: str, case: str, broken_bags: dict[str, tuple[Path, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, expected = broken_bags[case]
    extra = ["--backend", "test_policy", "--out", str(path.parent / "eval")] if command == "evaluate" else []
    code, err = run_cli([command, str(path), *extra], capsys)
    line = one_line(err)
    if command == "evaluate" and case == "file":  # evaluate reads a plain file as a manifest of bags
        expected = "is not a rosbag2 bag"
    assert code == 2 and line.startswith(f"alpamayo-ros {command}: ") and str(path) in line and expected in line


def test_evaluate_a_nonexistent_model(tiny_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["evaluate", str(tiny_bag), "--model", str(tmp_path / "nope"), "--out", str(tmp_path)], capsys)
    assert code == 2
    assert f"--model {tmp_path / 'nope'}: no such checkpoint directory, and not a preset" in one_line(err)
    (tmp_path / "empty_ckpt").mkdir()
    code, err = run_cli(["evaluate", str(tiny_bag), "--model", str(tmp_path / "empty_ckpt")], capsys)
    assert code == 2 and "directory has no config.json" in one_line(err)


def test_evaluate_nonexistent_predictions(tiny_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["evaluate", str(tiny_bag), "--predictions", str(tmp_path / "rec")], capsys)
    assert code == 2 and f"--predictions: {tmp_path / 'rec'} does not exist" in one_line(err)


def test_evaluate_predictions_without_the_nodes_path(
    tiny_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real bag given as --predictions that holds no */output/path: named, not a traceback."""
    code, err = run_cli(["evaluate", str(tiny_bag), "--predictions", str(tiny_bag), "--out", str(tmp_path)], capsys)
    assert code == 2 and "no nav_msgs/Path topic */output/path" in one_line(err)


def test_evaluate_a_bag_without_camera_topics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid bag, odometry only: it used to exit 0 with '0 of 0 anchor frames scored'."""
    bag = tmp_path / "odom_only"
    with bagio.BagWriter(bag) as writer:
        for k in range(20):
            ns = 10**9 + k * 20_000_000
            writer.write(
                bagio.ODOM_TOPIC, bagio.ODOMETRY, ns, bagio.odometry_msg(ns, 0.2 * k, 0, 0, v_mps=10, yaw_rate=0)
            )
    code, err = run_cli(["evaluate", str(bag), "--backend", "test_policy", "--out", str(tmp_path / "e")], capsys)
    line = one_line(err)
    assert code == 2 and f"{bag} has no image topic of the anchor camera camera_front_wide_120fov" in line
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--seconds", "1"], "scenario too short: 1.0 s"),
        (["--width", "8", "--height", "4"], "image size 8x4 is too small"),
    ],
)
def test_synth_rejects_what_it_cannot_generate(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["synth", "--out", str(tmp_path / "bag"), *argv], capsys)
    assert code == 2 and expected in one_line(err)
    assert not (tmp_path / "bag").exists()


def test_synth_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["synth", "--scenario", "moon_landing", "--out", "x"], capsys)
    assert code == 2 and "invalid choice: 'moon_landing'" in err and "Traceback" not in err


def test_the_installed_command_prints_one_line_not_a_traceback(broken_bags: dict[str, tuple[Path, str]]) -> None:
    """The console script a user runs, end to end (exit code and stderr of the real process)."""
    path, expected = broken_bags["corrupt"]
    done = subprocess.run(
        [ALPAMAYO_ROS, "evaluate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert done.returncode == 2
    assert expected in one_line(done.stderr)


def test_play_skips_topics_whose_message_package_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    """As ros2 bag play does (e.g. /tf where tf2_msgs has no wheel): one line per skipped topic, the rest plays."""
    from alpamayo_ros.tools.play import _playable

    infos = [
        bagio.TopicInfo("/odom", bagio.ODOMETRY, 3, ()),
        bagio.TopicInfo("/weird", "no_such_msgs/msg/Thing", 3, ()),
    ]
    lines: list[str] = []
    assert [i.topic for i in _playable(infos, lines.append)] == ["/odom"]
    assert lines == [
        "skipping /weird: message package 'no_such_msgs' is not installed (needed for no_such_msgs/msg/Thing)"
    ]


def test_demo_refuses_a_nonexistent_model_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It used to render the bag, start three processes and write a report of nothing (~3 min) first."""
    code, err = run_cli(["demo", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "demo")], capsys)
    assert code == 2 and f"--model {tmp_path / 'nope'}: no such checkpoint directory" in one_line(err)
    assert not (tmp_path / "demo").exists()
