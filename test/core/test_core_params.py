"""Parameters: one source of truth (YAML in sync), validation with reasons, ModelSpec mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alpamayo_ros.core import params as P
from alpamayo_ros.core.rig import CAMERA_NAMES

REPO = Path(__file__).resolve().parents[2]


def test_yaml_is_generated_from_the_declarations() -> None:
    text = (REPO / "config" / "alpamayo.yaml").read_text()
    assert text == P.render_yaml(), "regenerate: python -m alpamayo_ros.core.params yaml > config/alpamayo.yaml"
    tree = yaml.safe_load(text)["alpamayo_node"]["ros__parameters"]
    assert P.flatten_yaml(tree) == P.default_values()


def test_every_spec_has_a_description_and_every_field_a_spec() -> None:
    assert all(spec.description for spec in P.PARAM_SPECS)
    assert len(P.SPECS_BY_NAME) == len(P.PARAM_SPECS)
    fields = {f.name for f in P.NodeParams.__dataclass_fields__.values()} - {"cameras"}
    assert fields == {s.attr for s in P.PARAM_SPECS if not s.name.startswith("cameras.")}
    assert {f"cameras.{c}.topic" for c in CAMERA_NAMES} <= set(P.SPECS_BY_NAME)


def test_defaults_are_valid_and_round_trip() -> None:
    params = P.from_values({})
    assert P.validate(params) == []
    assert P.to_values(params) == P.default_values()
    assert params.model_spec().backend == "torch" and params.model_spec().model_path == "default"
    assert params.camera("camera_front_wide_120fov").topic == "~/input/camera_front_wide_120fov/image"
    assert params.autostart is True and params.overlay_enabled is False


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"planning_rate_hz": 0.0}, "planning_rate_hz = 0.0 is below the minimum 0.1"),
        ({"sync.tolerance_sec": 2.0}, "sync.tolerance_sec = 2.0 is above the maximum 0.5"),
        ({"sync.anchor_camera": "camera_roof"}, "sync.anchor_camera = 'camera_roof' is not one of"),
        ({"cameras.camera_rear_tele_30fov.message_type": "h264"}, "message_type = 'h264' is not one of image"),
        ({"cameras.camera_rear_tele_30fov.topic": " "}, "cameras.camera_rear_tele_30fov.topic is empty"),
        ({"model.backend": "jax"}, "model.backend = 'jax' is not one of"),
        ({"model.device": "tpu"}, "model: device 'tpu' is not auto, cpu, cuda or cuda:N"),
        ({"overlay.mount_xyz_m": [1.0, 2.0]}, "overlay.mount_xyz_m = [1.0, 2.0] must have 3 elements"),
        ({"sync.buffer_sec": 0.3}, "sync.buffer_sec = 0.3 is shorter than 0.3 s of frames"),
        ({"ego.buffer_sec": 1.6}, "ego.buffer_sec = 1.6 is shorter than 1.5 s + ego.max_gap_sec"),
        ({"max_sample_age_sec": float("nan")}, "max_sample_age_sec = nan is not finite"),
        ({"output.frame_id": ""}, "output.frame_id is empty"),
    ],
)
def test_validation_names_parameter_and_value(changes: dict, reason: str) -> None:
    reasons = P.validate(P.from_values(changes))
    assert any(reason in r for r in reasons), reasons


def test_replace_and_unknown_names() -> None:
    params = P.replace(P.from_values({}), {"model.backend": "test_policy", "model.num_samples": 3})
    assert params.model_spec().backend == "test_policy" and params.model_spec().num_samples == 3
    with pytest.raises(KeyError, match=r"model\.bakend"):
        P.from_values({"model.bakend": "torch"})


def test_markdown_table_lists_each_parameter_once() -> None:
    table = P.render_markdown()
    assert '| `cameras.<camera>.topic` | `"~/input/<camera>/image"` |' in table
    assert table.count("cameras.<camera>.topic") == 1
    assert "`model.backend`" in table and "`sync.tolerance_sec`" in table


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("model.max_reasoning_tokens", 64, None),
        ("model.max_reasoning_tokens", 64.0, None),  # YAML / CLI "64.0"
        ("model.max_reasoning_tokens", 64.5, "is not an integer"),
        ("model.max_reasoning_tokens", True, "is not an integer"),
        ("planning_rate_hz", 10, None),
        ("planning_rate_hz", "fast", "is not a number"),
        ("overlay.mount_xyz_m", [1, 0, 1], None),  # an INTEGER_ARRAY on the command line
        ("overlay.mount_xyz_m", ["a"], "is not a list of numbers"),
        ("output.frame_id", 1, "is not a string"),
        ("autostart", "yes", "is not a boolean"),
    ],
)
def test_type_problems_are_reasons_not_crashes(name: str, value: object, problem: str | None) -> None:
    found = P.type_problem(P.SPECS_BY_NAME[name], value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and name in found
