"""The demo's wiring onto the node: parameter names exist in core.params, topics are the bag's."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.core import params as P
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.sim.fingerprint import generator_fingerprint
from alpamayo_ros.tools import bagio, demo


def _flatten(tree: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def test_replay_params_name_real_node_parameters() -> None:
    for compressed in (False, True):
        doc = yaml.safe_load(demo.replay_params_yaml(compressed))
        flat = _flatten(doc[P.NODE_NAME]["ros__parameters"])
        unknown = set(flat) - set(P.SPECS_BY_NAME) - {"use_sim_time"}
        assert not unknown, unknown
        for cam in CAMERA_NAMES:
            assert flat[f"cameras.{cam}.topic"] == bagio.image_topic(cam, compressed)
        assert P.from_values({k: v for k, v in flat.items() if k != "use_sim_time"}).camera(CAMERA_NAMES[0]).topic
        assert P.NODE_NAME == demo.NODE_NAME


def test_node_command_and_bag_cache_key(tmp_path: Path) -> None:
    args = argparse.Namespace(
        backend="test_policy",
        model="tiny",
        device="cpu",
        max_reasoning_tokens=16,
        compressed=False,
        scenario="free_road",
        seed=4,
        seconds=8.0,
        width=960,
        height=540,
    )
    cmd = demo.node_command(args, tmp_path / "p.yaml")
    assert (tmp_path / "p.yaml").is_file()
    assert "model.backend:=test_policy" in cmd and "model.max_reasoning_tokens:=16" in cmd
    assert cmd[-2:] == ["-r", f"/{demo.NODE_NAME}/input/odometry:={bagio.ODOM_TOPIC}"]
    fingerprint = generator_fingerprint()
    assert demo.bag_cache_path(tmp_path, args).name == f"free_road_seed4_8s_960x540_raw_{fingerprint}"


def test_generator_fingerprint_follows_the_label_and_planner_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A cached render or bag made before a change to the labels must not be served after it."""
    from alpamayo_ros.sim import fingerprint

    before = fingerprint.generator_fingerprint()
    copies = []
    for src in fingerprint._SOURCES:
        copy = tmp_path / src.name
        copy.write_bytes(src.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(fingerprint, "_SOURCES", tuple(copies))
    fingerprint.generator_fingerprint.cache_clear()
    assert fingerprint.generator_fingerprint() == before  # same bytes, same key
    labels = next(c for c in copies if c.name == "labels.py")
    labels.write_text(labels.read_text().replace("I must stop behind it.", "I must stop well behind it."))
    fingerprint.generator_fingerprint.cache_clear()
    assert fingerprint.generator_fingerprint() != before
    monkeypatch.undo()
    fingerprint.generator_fingerprint.cache_clear()
    assert {"labels.py", "planner.py", "decisions.py"} <= {src.name for src in fingerprint._SOURCES}
