"""Parameters: one declaration per setting (YAML and README derived), validation with reasons, parameter files."""

from __future__ import annotations

import array
import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from alpamayo_ros.core import params as P
from alpamayo_ros.core.rig import CAMERA_NAMES

REPO = Path(__file__).resolve().parents[2]


def test_yaml_is_generated_from_the_declarations() -> None:
    text = (REPO / "config" / "alpamayo.yaml").read_text()
    assert text == P.render_yaml(), "regenerate: python -m alpamayo_ros.core.params yaml > config/alpamayo.yaml"
    # keyed /** so that namespace:=veh1 (or another node name) keeps the file's values
    tree = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert P.flatten_yaml(tree) == P.default_values()


def test_every_spec_has_a_description_and_every_config_field_a_spec() -> None:
    assert all(spec.description for spec in P.PARAM_SPECS)
    assert len(P.SPECS_BY_NAME) == len(P.PARAM_SPECS)
    for prefix, attr, config_type in P.GROUPS:
        for fld in dataclasses.fields(config_type):
            assert f"{prefix}{fld.name}" in P.SPECS_BY_NAME, f"{attr}.{fld.name} is not a parameter"
    assert {f"cameras.{c}.topic" for c in CAMERA_NAMES} <= set(P.SPECS_BY_NAME)


def test_no_parameter_name_is_spelled_twice_in_the_sources() -> None:
    """Each parameter's leaf name appears as a declaration (a ``param(...)`` field) exactly once in src/."""
    declared: dict[str, int] = {}
    for path in (REPO / "src" / "alpamayo_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call):
                func = node.value.func
                if isinstance(func, ast.Name) and func.id == "param" and isinstance(node.target, ast.Name):
                    declared[node.target.id] = declared.get(node.target.id, 0) + 1
    leaves = {spec.name.rsplit(".", 1)[-1] for spec in P.PARAM_SPECS}
    assert set(declared) == leaves
    twice = {name: n for name, n in declared.items() if n > 1 and name != "buffer_sec"}
    assert twice == {}, "a parameter is declared in more than one config"  # sync.buffer_sec / ego.buffer_sec differ


def test_defaults_are_valid_and_round_trip() -> None:
    params = P.from_values({})
    assert params == P.NodeParams()
    assert P.validate(params) == []
    assert P.to_values(params) == P.default_values()
    assert params.model.backend == "torch" and params.model.model_path == "default"
    assert params.camera("camera_front_wide_120fov").topic == "~/input/camera_front_wide_120fov/image"
    assert params.node.autostart is True and params.overlay.enabled is False


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"planning_rate_hz": 0.0}, "planning_rate_hz = 0.0 is below the minimum 0.1"),
        ({"sync.tolerance_sec": 2.0}, "sync.tolerance_sec = 2.0 is above the maximum 0.5"),
        ({"sync.anchor_camera": "camera_roof"}, "sync.anchor_camera = 'camera_roof' is not one of"),
        ({"cameras.camera_rear_tele_30fov.message_type": "h264"}, "message_type = 'h264' is not one of image"),
        ({"cameras.camera_rear_tele_30fov.topic": " "}, "cameras.camera_rear_tele_30fov.topic is empty"),
        ({"model.backend": "jax"}, "model.backend = 'jax' is not one of"),
        ({"model.device": "tpu"}, "model.device = 'tpu' is not auto, cpu, cuda or cuda:N"),
        ({"model.fast_path": "on", "model.backend": "onnxruntime"}, "applies to the torch backend"),
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
    assert params.model.backend == "test_policy" and params.model.num_samples == 3
    with pytest.raises(KeyError, match=r"model\.bakend"):
        P.from_values({"model.bakend": "torch"})


def test_markdown_table_lists_each_parameter_once_and_is_the_readme_table() -> None:
    table = P.render_markdown()
    assert '| `cameras.<camera>.topic` | `"~/input/<camera>/image"` |' in table
    assert table.count("cameras.<camera>.topic") == 1
    assert "`model.backend`" in table and "`sync.tolerance_sec`" in table
    readme = (REPO / "README.md").read_text()
    begin = readme.index("-->\n", readme.index("<!-- BEGIN PARAMETERS")) + len("-->\n")
    assert readme[begin : readme.index("<!-- END PARAMETERS")] == table, "regenerate the README table"


def test_booleans_stand_for_on_off_choices_and_double_arrays_for_lists() -> None:
    """YAML 1.1 reads fast_path: on as true; rclpy hands a double array parameter as array.array('d')."""
    fast_path = P.SPECS_BY_NAME["model.fast_path"]
    assert P.type_problem(fast_path, True) is None and P.type_problem(fast_path, False) is None
    assert P.from_values({"model.fast_path": True}).model.fast_path == "on"
    assert P.from_values({"model.fast_path": False}).model.fast_path == "off"
    assert P.type_problem(P.SPECS_BY_NAME["model.greedy"], "on") is not None  # only declared aliases
    mount = P.SPECS_BY_NAME["overlay.mount_xyz_m"]
    assert P.type_problem(mount, array.array("d", [1.0, 0.0, 1.2])) is None
    assert P.from_values({"overlay.mount_xyz_m": array.array("d", [1.0, 0.0, 1.2])}).overlay.mount_xyz_m == (
        1.0,
        0.0,
        1.2,
    )


def test_parameter_files_load_by_node_name_or_wildcard(tmp_path: Path) -> None:
    generated = P.load_params_file(REPO / "config" / "alpamayo.yaml")
    assert generated == P.NodeParams()
    own = tmp_path / "own.yaml"
    own.write_text(
        "alpamayo_node:\n  ros__parameters:\n    model:\n      fast_path: on\n    sync:\n      tolerance_sec: 0.02\n"
    )
    params = P.load_params_file(own)
    assert params.model.fast_path == "on" and params.sync.tolerance_sec == 0.02
    bad = tmp_path / "bad.yaml"
    bad.write_text('"/**":\n  ros__parameters:\n    sync:\n      tolerance_sec: 9.0\n')
    with pytest.raises(P.ParamsFileError, match=r"bad\.yaml: sync\.tolerance_sec = 9\.0 is above the maximum"):
        P.load_params_file(bad)
    other = tmp_path / "other.yaml"
    other.write_text("some_node:\n  ros__parameters:\n    x: 1\n")
    with pytest.raises(P.ParamsFileError, match="no '/\\*\\*' or 'alpamayo_node' section"):
        P.load_params_file(other)
    with pytest.raises(P.ParamsFileError, match="cannot read"):
        P.load_params_file(tmp_path / "missing.yaml")


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


def test_a_configuration_round_trips_through_a_parameter_file(tmp_path: Path) -> None:
    params = P.replace(P.NodeParams(), {"model.backend": "test_policy", "overlay.mount_xyz_m": [1.0, 0.0, 2.0]})
    path = tmp_path / "node.yaml"
    path.write_text(P.params_file_text(params, {"use_sim_time": True}))
    assert P.load_params_file(path) == params
    assert yaml.safe_load(path.read_text())["/**"]["ros__parameters"]["use_sim_time"] is True


def test_declared_values_become_params_or_every_reason() -> None:
    declared = P.to_values(P.NodeParams())
    params, problems = P.params_from_declared({**declared, "planning_rate_hz": 4})
    assert problems == [] and params is not None and params.planning.planning_rate_hz == 4.0
    params, problems = P.params_from_declared({**declared, "planning_rate_hz": "fast", "autostart": "yes"})
    assert params is None and len(problems) == 2 and all(name in " ".join(problems) for name in ("rate", "autostart"))
    params, problems = P.params_from_declared({**declared, "sync.tolerance_sec": -1.0})
    assert params is None and len(problems) == 1 and "sync.tolerance_sec" in problems[0]
