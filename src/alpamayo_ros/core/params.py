"""The node's parameters, gathered from the config dataclasses of the modules that use them.

Each setting is declared once, as a ``param(...)`` field of its module's frozen config (``core.model_spec.ModelSpec``,
``core.intake.InputParams``, ``core.sync.SyncParams``, ``core.ego_history.EgoParams``, ``core.planning.PlanningParams``,
``core.output_params.OutputParams``, ``core.overlay.OverlayParams``, ``core.diagnostics.DiagnosticsParams``,
``core.intake.CameraInput`` per camera, and ``NodeOptions`` below). This module only derives from them:
``PARAM_SPECS`` (what the node declares), ``NodeParams`` (the typed, frozen view), ``validate`` (reasons, never
raises), and the generated ``config/alpamayo.yaml`` and README table (``python -m alpamayo_ros.core.params
yaml|markdown``; tests check both). ``load_params_file`` reads a node parameter file, so ``evaluate`` and the
simulator can reproduce a node configuration exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from alpamayo_ros.core.diagnostics import DiagnosticsParams
from alpamayo_ros.core.ego_history import EgoParams
from alpamayo_ros.core.intake import CAMERA_PLACEHOLDER, CameraInput, InputParams
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.output_params import OutputParams
from alpamayo_ros.core.overlay import OverlayParams
from alpamayo_ros.core.param_fields import ParamInfo, field_problems, param, param_fields
from alpamayo_ros.core.planning import PlanningParams
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.sync import SyncParams

NODE_NAME = "alpamayo_node"
# A parameter file keyed by this applies to the node whatever its name and namespace (``namespace:=veh1``).
PARAMS_FILE_KEY = "/**"
ParamValue = Union[bool, int, float, str, list[float]]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True)
class NodeOptions:
    """Settings of the node itself (top-level parameters)."""

    autostart: bool = param(True, "configure and activate on start (false: wait for lifecycle transitions)")
    publish_all_samples: bool = param(
        False, "publish every trajectory sample (ChainOfCausation per sample) not only the plan", when="live"
    )
    log_throttle_sec: float = param(
        2.0, "identical warnings are logged at most once per this period", min_value=0.0, max_value=600.0, when="live"
    )


# (ROS name prefix, NodeParams attribute, config type), in the order of the YAML and the README table
GROUPS: tuple[tuple[str, str, type[Any]], ...] = (
    ("", "node", NodeOptions),
    ("", "planning", PlanningParams),
    ("model.", "model", ModelSpec),
    ("input.", "input", InputParams),
    ("sync.", "sync", SyncParams),
    ("ego.", "ego", EgoParams),
    ("output.", "output", OutputParams),
    ("overlay.", "overlay", OverlayParams),
    ("diagnostics.", "diagnostics", DiagnosticsParams),
)


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter, derived from a config field. ``group`` is the NodeParams attribute (or a camera name)."""

    name: str  # ROS name, dotted
    default: ParamValue
    info: ParamInfo
    group: str
    field: str

    @property
    def description(self) -> str:
        return self.info.description

    @property
    def when(self) -> str:
        return self.info.when


def _ros_value(value: Any) -> ParamValue:
    return list(value) if isinstance(value, tuple) else value  # type: ignore[no-any-return]


def _specs() -> tuple[ParamSpec, ...]:
    specs = [
        ParamSpec(prefix + fld.name, _ros_value(fld.default), info, attr, fld.name)
        for prefix, attr, config_type in GROUPS
        for fld, info in param_fields(config_type)
    ]
    for camera in CAMERA_NAMES:
        defaults = CameraInput.default_for(camera)
        for fld, info in param_fields(CameraInput):
            named = dataclasses.replace(info, description=info.description.replace(CAMERA_PLACEHOLDER, camera))
            specs.append(
                ParamSpec(f"cameras.{camera}.{fld.name}", getattr(defaults, fld.name), named, camera, fld.name)
            )
    return tuple(specs)


PARAM_SPECS: tuple[ParamSpec, ...] = _specs()
SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAM_SPECS}


@dataclass(frozen=True)
class NodeParams:
    """Typed view of every parameter: one config object per module, cameras in rig order."""

    node: NodeOptions = dataclasses.field(default_factory=NodeOptions)
    planning: PlanningParams = dataclasses.field(default_factory=PlanningParams)
    model: ModelSpec = dataclasses.field(default_factory=ModelSpec)
    input: InputParams = dataclasses.field(default_factory=InputParams)
    sync: SyncParams = dataclasses.field(default_factory=SyncParams)
    ego: EgoParams = dataclasses.field(default_factory=EgoParams)
    output: OutputParams = dataclasses.field(default_factory=OutputParams)
    overlay: OverlayParams = dataclasses.field(default_factory=OverlayParams)
    diagnostics: DiagnosticsParams = dataclasses.field(default_factory=DiagnosticsParams)
    cameras: tuple[CameraInput, ...] = dataclasses.field(
        default_factory=lambda: tuple(CameraInput.default_for(camera) for camera in CAMERA_NAMES)
    )

    def camera(self, name: str) -> CameraInput:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"unknown camera {name!r}")


def default_values() -> dict[str, ParamValue]:
    return {spec.name: spec.default for spec in PARAM_SPECS}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_problem(spec: ParamSpec, value: Any) -> str | None:
    """Why a value cannot be a parameter of this spec's type, or None.

    Integral floats pass for integers and integers for floats (YAML and the command line do not keep the declared
    type), any sequence of numbers passes for a list (rclpy hands double arrays as ``array.array('d')``), and a
    declared alias passes for its choice (YAML reads ``on``/``off`` as booleans).
    """
    value = spec.info.canonical(value)
    default = spec.default
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok, kind = _is_number(value) and float(value).is_integer(), "an integer"
    elif isinstance(default, float):
        ok, kind = _is_number(value), "a number"
    elif isinstance(default, list):
        ok = isinstance(value, Sequence) and not isinstance(value, str) and all(_is_number(v) for v in value)
        kind = "a list of numbers"
    else:
        ok, kind = isinstance(value, str), "a string"
    return None if ok else f"{spec.name} = {value!r} is not {kind}"


def _coerce(spec: ParamSpec, value: Any) -> Any:
    value = spec.info.canonical(value)
    if isinstance(spec.default, bool):
        return bool(value)
    if isinstance(spec.default, int):
        return int(value)
    if isinstance(spec.default, float):
        return float(value)
    if isinstance(spec.default, list):
        return tuple(float(v) for v in value)
    return str(value)


def from_values(values: Mapping[str, Any]) -> NodeParams:
    """Build NodeParams from ROS-named values; missing names take their defaults. Types are coerced, not checked
    (``type_problem``), and ranges are not validated here (``validate``).

    Raises:
        KeyError: a name that is not a parameter.
    """
    unknown = sorted(set(values) - set(SPECS_BY_NAME))
    if unknown:
        raise KeyError(f"unknown parameters: {', '.join(unknown)}")
    by_group: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        spec = SPECS_BY_NAME[name]
        by_group.setdefault(spec.group, {})[spec.field] = _coerce(spec, value)
    defaults = NodeParams()
    groups = {attr: dataclasses.replace(getattr(defaults, attr), **by_group.get(attr, {})) for _, attr, _ in GROUPS}
    cameras = tuple(dataclasses.replace(cam, **by_group.get(cam.name, {})) for cam in defaults.cameras)
    return NodeParams(**groups, cameras=cameras)


def to_values(params: NodeParams) -> dict[str, ParamValue]:
    """ROS name -> value of every parameter."""
    out: dict[str, ParamValue] = {}
    for spec in PARAM_SPECS:
        owner = params.camera(spec.group) if spec.name.startswith("cameras.") else getattr(params, spec.group)
        out[spec.name] = _ros_value(getattr(owner, spec.field))
    return out


def validate(params: NodeParams) -> list[str]:
    """Reasons the parameter set is unusable (empty = valid); each names the parameter and its value."""
    reasons: list[str] = []
    for prefix, attr, _ in GROUPS:
        config = getattr(params, attr)
        own_checks = getattr(config, "problems", None)  # configs with cross-field rules check their fields too
        reasons += own_checks(prefix) if own_checks is not None else field_problems(config, prefix)
    for cam in params.cameras:
        reasons += field_problems(cam, f"cameras.{cam.name}.")
        if not cam.topic.strip():
            reasons.append(f"cameras.{cam.name}.topic is empty")
    if not params.output.frame_id.strip():
        reasons.append("output.frame_id is empty")
    return reasons


def replace(params: NodeParams, values: Mapping[str, Any]) -> NodeParams:
    """A copy with some ROS-named values changed (for validating a parameter change as a transaction)."""
    return from_values({**to_values(params), **values})


@dataclass(frozen=True)
class ParameterChange:
    """The verdict on a set of parameter changes: refused with reasons, or the configuration to run with now."""

    problems: list[str]
    running: NodeParams | None  # None when refused
    deferred: list[str]  # accepted configure-time names that apply at the next configure


def params_from_declared(declared: Mapping[str, Any]) -> tuple[NodeParams | None, list[str]]:
    """The parameter set that ROS-named ``declared`` values describe, or None with every reason it is unusable
    (wrong types first, then ranges and cross-field rules). Used at construction, at configure and for changes."""
    problems = [p for name, v in declared.items() if (p := type_problem(SPECS_BY_NAME[name], v)) is not None]
    if problems:
        return None, problems
    params = from_values(declared)
    problems = validate(params)
    return (None, problems) if problems else (params, [])


def check_change(
    running: NodeParams, declared: Mapping[str, Any], changes: Mapping[str, Any], *, configured: bool
) -> ParameterChange:
    """Validate ``changes`` as one transaction against every value the next configure will read (``declared``: the
    node's current parameter values, pending configure-time changes included), not against the running
    configuration: two individually valid changes must not make the next configure fail.

    While configured, the running configuration takes only the live changes: a frame_id or topic changing under a live
    model would mislabel plans; the others apply at the next configure.
    """
    pending, problems = params_from_declared({**declared, **changes})
    if pending is None:
        return ParameterChange(problems, None, [])
    if not configured:
        return ParameterChange([], pending, [])
    live = {k: v for k, v in changes.items() if SPECS_BY_NAME[k].when == "live"}
    return ParameterChange([], replace(running, live), sorted(set(changes) - set(live)))


# --- parameter files ---------------------------------------------------------------------------------------------


class ParamsFileError(ValueError):
    """A node parameter file that cannot be used; the message names the file and what is wrong."""


def flatten_yaml(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML parameters -> dotted names (as ROS reads a params file)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_yaml(value, f"{name}."))
        else:
            out[name] = value
    return out


def load_params_file(path: Path, node_name: str = NODE_NAME) -> NodeParams:
    """A ROS 2 parameter file (``/**:`` or ``<node>:`` -> ``ros__parameters``) -> validated NodeParams.

    Raises:
        ParamsFileError: unreadable YAML, no section for the node, an unknown name, a wrong type or a bad value.
    """
    import yaml

    try:
        tree = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsFileError(f"{path}: cannot read parameter file: {exc}") from None
    values: dict[str, Any] = {}
    for key in (PARAMS_FILE_KEY, node_name, f"/{node_name}"):
        section = tree.get(key) if isinstance(tree, Mapping) else None
        if isinstance(section, Mapping) and isinstance(section.get("ros__parameters"), Mapping):
            values.update(flatten_yaml(section["ros__parameters"]))
    if not values:
        raise ParamsFileError(f"{path}: no '{PARAMS_FILE_KEY}' or '{node_name}' section with ros__parameters")
    values = {k: v for k, v in values.items() if k != "use_sim_time"}
    try:
        problems = [p for name, v in values.items() if (p := type_problem(SPECS_BY_NAME[name], v)) is not None]
    except KeyError as exc:
        raise ParamsFileError(f"{path}: unknown parameter {exc}") from None
    params = from_values(values) if not problems else NodeParams()
    problems += validate(params)
    if problems:
        raise ParamsFileError(f"{path}: {'; '.join(problems)}")
    return params


def params_file_text(params: NodeParams, extra: Mapping[str, Any] | None = None) -> str:
    """A ROS 2 parameter file (keyed ``/**``) holding every value of ``params`` plus ``extra`` ROS parameters
    (e.g. use_sim_time): how a tool hands a node its exact configuration."""
    import yaml

    tree: dict[str, Any] = {}
    for name, value in {**to_values(params), **(extra or {})}.items():
        *groups, leaf = name.split(".")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return yaml.safe_dump({PARAMS_FILE_KEY: {"ros__parameters": tree}}, sort_keys=False)


# --- generated artefacts ---------------------------------------------------------------------------------------


def _yaml_scalar(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(repr(float(v)) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def render_yaml() -> str:
    """config/alpamayo.yaml: every parameter with its default and description, nested by dotted name."""
    lines = [
        "# alpamayo_node parameters: GENERATED from the config dataclasses gathered in alpamayo_ros/core/params.py",
        "# (python -m alpamayo_ros.core.params yaml > config/alpamayo.yaml); test/core/test_params.py checks it.",
        "# 'configure' parameters are read on the configure transition; 'live' ones apply on change.",
        f"# Keyed '{PARAMS_FILE_KEY}' so that it applies under any node name and namespace (namespace:=veh1).",
        f'"{PARAMS_FILE_KEY}":',
        "  ros__parameters:",
    ]
    open_path: list[str] = []
    for spec in PARAM_SPECS:
        *groups, leaf = spec.name.split(".")
        common = 0
        while common < min(len(groups), len(open_path)) and groups[common] == open_path[common]:
            common += 1
        for depth in range(common, len(groups)):
            lines.append("    " + "  " * depth + f"{groups[depth]}:")
        open_path = groups
        indent = "    " + "  " * len(groups)
        rng = spec.info.range_text()
        lines.append(f"{indent}# {spec.description}{f' ({rng})' if rng else ''} [{spec.when}]")
        lines.append(f"{indent}{leaf}: {_yaml_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """README table: one row per parameter (the seven cameras' rows folded into ``cameras.<camera>.*``)."""

    def cell(text: str) -> str:
        return text.replace(CAMERA_NAMES[0], CAMERA_PLACEHOLDER).replace("|", "\\|")

    rows = ["| parameter | default | range | applies | description |", "|---|---|---|---|---|"]
    for spec in PARAM_SPECS:
        if spec.name.startswith("cameras.") and spec.group != CAMERA_NAMES[0]:
            continue
        generic = spec.name.startswith("cameras.")
        name = cell(spec.name) if generic else spec.name
        default = cell(_yaml_scalar(spec.default)) if generic else _yaml_scalar(spec.default)
        info = spec.info
        rng = ", ".join(info.choices) if info.choices is not None else info.range_text()
        description = cell(info.description) if generic else info.description.replace("|", "\\|")
        rows.append(f"| `{name}` | `{default}` | {rng} | {spec.when} | {description} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="print generated parameter artefacts")
    parser.add_argument("what", choices=("yaml", "markdown"))
    args = parser.parse_args()
    print(render_yaml() if args.what == "yaml" else render_markdown(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "GROUPS",
    "NODE_NAME",
    "PARAMS_FILE_KEY",
    "PARAM_SPECS",
    "NodeOptions",
    "NodeParams",
    "ParamSpec",
    "ParameterChange",
    "ParamsFileError",
    "check_change",
    "default_values",
    "from_values",
    "load_params_file",
    "params_file_text",
    "params_from_declared",
    "render_markdown",
    "render_yaml",
    "replace",
    "to_values",
    "type_problem",
    "validate",
]
