"""Shared fixtures of the tools tests: one small scenario bag per session (160x90 images, 3.5 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_W, TINY_H = 160, 90


@pytest.fixture(scope="session")
def tiny_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from alpamayo_ros.sim import generate
    from alpamayo_ros.tools.synth import write_scenario_bag

    out = tmp_path_factory.mktemp("bags") / "lead_braking"
    write_scenario_bag(generate("lead_vehicle_braking", 3, 3.5, TINY_W, TINY_H), out, progress=False)
    return out


@pytest.fixture(scope="session")
def broken_bags(tmp_path_factory: pytest.TempPathFactory, tiny_bag: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, what bagio.bag_problem says about it): not-quite-bags a user may point a tool at."""
    import shutil

    root, good = tmp_path_factory.mktemp("broken"), tiny_bag

    cases: dict[str, tuple[Path, str]] = {"missing": (root / "nope", "does not exist")}
    (root / "empty").mkdir()
    cases["empty"] = (root / "empty", "is an empty directory")
    (root / "notes.txt").write_text("hello")
    cases["file"] = (root / "notes.txt", "is a file, not a rosbag2 bag")
    (root / "nometa").mkdir()
    (root / "nometa" / "x.mcap").write_bytes(b"")
    cases["no metadata"] = (root / "nometa", "directory without metadata.yaml")
    for name in ("corrupt", "no mcap", "truncated"):
        shutil.copytree(good, root / name)
    (root / "corrupt" / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: [")
    cases["corrupt"] = (root / "corrupt", "Could not load YAML")
    for mcap in (root / "no mcap").glob("*.mcap"):
        mcap.unlink()
    cases["no mcap"] = (root / "no mcap", "files are missing")
    for mcap in (root / "truncated").glob("*.mcap"):
        mcap.write_bytes(mcap.read_bytes()[:2000])
    cases["truncated"] = (root / "truncated", "not a readable rosbag2 bag")
    return cases
