"""Fleet inputs: bag directories, directories of bags, globs and manifests; every bad entry named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpamayo_ros.tools.fleet.inputs import BagEntry, InputError, parse_manifest, resolve_inputs


def _fake_bag(path: Path) -> Path:
    """A directory that looks like a rosbag2 bag (only metadata.yaml is checked when resolving inputs)."""
    path.mkdir(parents=True)
    (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    return path


@pytest.fixture
def drives(tmp_path: Path) -> Path:
    for name in ("2026-12-01/veh1_a", "2026-12-01/veh1_b", "2026-12-02/veh2_a"):
        _fake_bag(tmp_path / "drives" / name)
    return tmp_path / "drives"


def test_a_directory_of_bags_expands_to_every_bag_below_it_sorted(drives: Path) -> None:
    got = resolve_inputs([str(drives)])
    assert [e.path.relative_to(drives).as_posix() for e in got] == [
        "2026-12-01/veh1_a",
        "2026-12-01/veh1_b",
        "2026-12-02/veh2_a",
    ]
    assert all(e.tags == {} for e in got)


def test_a_bag_given_itself_and_a_glob(drives: Path) -> None:
    assert resolve_inputs([str(drives / "2026-12-02/veh2_a")]) == [BagEntry(drives / "2026-12-02/veh2_a")]
    got = resolve_inputs([str(drives / "*" / "veh1_*")])
    assert [e.path.name for e in got] == ["veh1_a", "veh1_b"]


def test_manifest_with_tags_comments_and_relative_paths(drives: Path) -> None:
    manifest = drives / "nightly.txt"
    manifest.write_text(
        "# week 49\n"
        "2026-12-01/veh1_a vehicle=veh1 date=2026-12-01 route=loop-north\n"
        "\n"
        f"{drives / '2026-12-02/veh2_a'}   vehicle=veh2  # absolute path\n"
    )
    got = parse_manifest(manifest)
    assert got == [
        BagEntry(drives / "2026-12-01/veh1_a", {"vehicle": "veh1", "date": "2026-12-01", "route": "loop-north"}),
        BagEntry(drives / "2026-12-02/veh2_a", {"vehicle": "veh2"}),
    ]
    assert resolve_inputs([str(manifest)]) == got


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2026-12-01/veh1_a vehicle", "nightly.txt:2: tag 'vehicle' is not key=value"),
        ("2026-12-01/veh1_a vehicle=a vehicle=b", "nightly.txt:2: tag 'vehicle' given twice"),
        ("2026-12-01/missing vehicle=a", "nightly.txt:2: '2026-12-01/missing' is not a rosbag2 bag"),
        ("2026-12-01/veh1_a =x", "nightly.txt:2: tag '=x' is not key=value"),
    ],
)
def test_a_bad_manifest_entry_is_named_with_its_line(drives: Path, line: str, message: str) -> None:
    manifest = drives / "nightly.txt"
    manifest.write_text(f"2026-12-01/veh1_b\n{line}\n")
    with pytest.raises(InputError) as err:
        resolve_inputs([str(manifest)])
    text = str(err.value)
    assert message in text and "\n" not in text


def test_inputs_that_name_no_bag_are_refused_one_line_each(drives: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "blank.txt").write_text("# nothing yet\n")
    cases = {
        str(empty): "no rosbag2 bag (directory with metadata.yaml) under this directory",
        str(tmp_path / "nope"): "no such bag, directory of bags, manifest file or glob",
        str(tmp_path / "*.bagz"): "the pattern matches no rosbag2 bag",
        str(tmp_path / "blank.txt"): "the manifest lists no bag",
    }
    for arg, message in cases.items():
        with pytest.raises(InputError, match="^" + arg.replace("*", r"\*").replace(".", r"\.")) as err:
            resolve_inputs([arg])
        assert message in str(err.value)


def test_a_bag_listed_twice_is_refused(drives: Path) -> None:
    with pytest.raises(InputError, match="already listed by"):
        resolve_inputs([str(drives), str(drives / "2026-12-01/veh1_b")])
