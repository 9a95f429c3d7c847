"""Bad arguments to every subcommand that does work before failing: one line, a non-zero exit, nothing written.

Each of these used to end in a traceback (an output path under a file, a checkpoint that is missing or corrupt)
or to start minutes of work (rendering a bag or training data) that could only fail, or to run with a negative
duration or count.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_cli_errors import ALPAMAYO_ROS, one_line, run_cli


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["synth", "--out", "{file}/bag"], "--out {file}/bag: {file} is a file, not a directory"),
        (["record", "/x", "--out", "{file}/bag"], "--out {file}/bag: {file} is a file, not a directory"),
        (["record", "/x", "--out", "{tmp}/bag", "--duration", "-1"], "--duration must be a finite number >= 0"),
        (["record", "/x", "--out", "{tmp}/bag", "--depth", "0"], "--depth must be a finite number >= 1, got 0"),
        (["demo", "--out", "{tmp}/d", "--seconds", "1"], "scenario too short: 1.0 s"),
        (["demo", "--out", "{tmp}/d", "--width", "4"], "image size 4x540 is too small"),
        (["demo", "--out", "{tmp}/d", "--rate", "-1"], "--rate must be a finite number > 0, got -1"),
        (["demo", "--out", "{file}"], "--out {file}: {file} is a file, not a directory"),
        (["train", "--out", "{file}"], "--out {file}: {file} is a file, not a directory"),
        (["train", "--out", "{tmp}/m", "--steps", "0"], "--steps must be a finite number >= 1, got 0"),
        (["train", "--out", "{tmp}/m", "--max-minutes", "nan"], "--max-minutes must be a finite number > 0, got nan"),
        (["train", "--out", "{tmp}/m", "--cache", "{file}/c"], "--cache {file}/c: {file} is a file"),
        (["build-engines", "--out", "{file}"], "--out {file}: is a file, not a directory"),
        (["build-engines", "--out", "{tmp}/e", "--camera-size", "10"], "--camera-size must look like 1080x1920"),
        (["build-engines", "--out", "{tmp}/e", "--camera-size", "0x5"], "--camera-size 0x5: both sides must be"),
        (["build-engines", "--out", "{tmp}/e", "--num-samples", "0"], "num_samples = 0 is below the minimum 1"),
    ],
)
def test_unusable_arguments_are_refused_before_any_work(
    argv: list[str], expected: str, tmp_path: Path, a_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fill(text: str) -> str:
        return text.replace("{file}", str(a_file)).replace("{tmp}", str(tmp_path))

    code, err = run_cli([fill(a) for a in argv], capsys)
    line = one_line(err)
    assert code != 0 and fill(expected) in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [a_file.name], "something was written"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["play", "{bag}", "--start-offset", "-3"], "--start-offset must be a finite number >= 0, got -3"),
        (["play", "{bag}", "--rate", "0"], "--rate must be a finite number > 0, got 0"),
        (["evaluate", "{bag}", "--max-ticks", "-1", "--out", "{tmp}/e"], "--max-ticks must be a finite number >= 0"),
        (["evaluate", "{bag}", "--out", "{file}"], "--out {file}: {file} is a file, not a directory"),
    ],
)
def test_bag_tools_refuse_bad_numbers_and_outputs(
    argv: list[str], expected: str, *, tiny_bag: Path, tmp_path: Path, a_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fill(text: str) -> str:
        return text.replace("{file}", str(a_file)).replace("{tmp}", str(tmp_path)).replace("{bag}", str(tiny_bag))

    code, err = run_cli([fill(a) for a in argv], capsys)
    assert code == 2 and fill(expected) in one_line(err)


@pytest.mark.slow  # the installed command imports torch before it can load anything (~5 s each on two cores)
@pytest.mark.parametrize(
    ("checkpoint", "expected"),
    [
        ("nope", "cannot be loaded (FileNotFoundError: model_path '{ckpt}' is neither a checkpoint directory"),
        ("corrupt", "cannot be loaded (JSONDecodeError: Expecting value"),
    ],
)
def test_build_engines_with_an_unusable_model_is_one_line(tmp_path: Path, checkpoint: str, expected: str) -> None:
    """Both printed a raw traceback (a subprocess: loading sets torch's thread count process-wide)."""
    path = tmp_path / checkpoint
    if checkpoint == "corrupt":
        path.mkdir()
        (path / "config.json").write_text('{"hidden_size": ')
    done = subprocess.run(
        [ALPAMAYO_ROS, "build-engines", "--model", str(path), "--out", str(tmp_path / "e")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=dict(os.environ),
    )
    assert done.returncode == 1, done.stderr
    line = one_line(done.stderr)
    assert line.startswith(f"build-engines: --model {path}: ") and expected.replace("{ckpt}", str(path)) in line
    assert not (tmp_path / "e").exists()
