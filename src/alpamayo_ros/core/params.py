"""Every parameter of alpamayo_node in one place: name, default, description, range. One source of truth.

The node declares its ROS parameters from ``PARAM_SPECS``; ``config/alpamayo.yaml`` and the README table are
generated from it (``python -m alpamayo_ros.core.params yaml|markdown``) and a test checks the YAML against it.
``NodeParams`` is the typed, frozen view the node works with; ``validate`` returns reasons, never raises.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from alpamayo_ros.core.model_spec import BACKENDS, FAST_PATHS, ModelSpec
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.core.sync import MISSING_CAMERA_POLICIES

NODE_NAME = "alpamayo_node"
ParamValue = Union[bool, int, float, str, list[float]]  # noqa: UP007 (a runtime alias)
MESSAGE_TYPES: tuple[str, ...] = ("image", "compressed")
RELIABILITIES: tuple[str, ...] = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParamSpec:
    name: str  # ROS name, dotted
    default: ParamValue
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] | None = None
    when: str = "configure"  # "configure": read on configure; "live": applied on change while active

    @property
    def attr(self) -> str:
        return self.name.replace(".", "_")


def _camera_specs(camera: str) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec(
            f"cameras.{camera}.topic",
            f"~/input/{camera}/image",
            f"topic of {camera} (relative names resolve under the node; remappable)",
        ),
        ParamSpec(
            f"cameras.{camera}.message_type",
            "image",
            "sensor_msgs/Image ('image') or sensor_msgs/CompressedImage ('compressed', JPEG/PNG)",
            choices=MESSAGE_TYPES,
        ),
        ParamSpec(
            f"cameras.{camera}.reliability",
            "best_effort",
            "subscription QoS reliability; best_effort also receives from reliable publishers",
            choices=RELIABILITIES,
        ),
    )


_MODEL = ModelSpec()
PARAM_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True, "configure and activate on start (false: wait for lifecycle transitions)"),
    ParamSpec("planning_rate_hz", 10.0, "planning timer rate; ticks while an inference runs are skipped", 0.1, 100.0),
    ParamSpec(
        "max_sample_age_sec",
        0.5,
        "never plan on a sample whose t0 is older than this (node clock)",
        0.01,
        10.0,
        when="live",
    ),
    ParamSpec(
        "publish_all_samples",
        False,
        "publish every trajectory sample (ChainOfCausation per sample) not only the first",
        when="live",
    ),
    ParamSpec(
        "model.backend",
        _MODEL.backend,
        "model runtime; test_policy is a deterministic test double, not a driver",
        choices=BACKENDS,
    ),
    ParamSpec("model.model_path", _MODEL.model_path, "checkpoint directory, or 'default' / 'tiny'"),
    ParamSpec(
        "model.tokenizer_path",
        _MODEL.tokenizer_path,
        "base VLM tokenizer/processor directory; '' = built-in offline tokenizer",
    ),
    ParamSpec("model.device", _MODEL.device, "auto | cpu | cuda | cuda:N"),
    ParamSpec("model.dtype", _MODEL.dtype, "model dtype", choices=("auto", "float32", "bfloat16")),
    ParamSpec(
        "model.max_reasoning_tokens",
        _MODEL.max_reasoning_tokens,
        "reasoning token budget (main latency lever)",
        1,
        4096,
    ),
    ParamSpec(
        "model.num_samples", _MODEL.num_samples, "trajectory samples per inference (the first is the plan)", 1, 64
    ),
    ParamSpec("model.greedy", _MODEL.greedy, "greedy reasoning decode instead of sampling"),
    ParamSpec("model.temperature", _MODEL.temperature, "reasoning sampling temperature", 1e-3, 10.0),
    ParamSpec("model.top_p", _MODEL.top_p, "reasoning nucleus sampling mass", 1e-3, 1.0),
    ParamSpec(
        "model.flow_steps", _MODEL.flow_steps, "flow-matching Euler steps; 0 = the checkpoint's default", 0, 1000
    ),
    ParamSpec("model.seed", _MODEL.seed, "random seed of sampling", 0, 2**31 - 1),
    ParamSpec("model.engine_dir", _MODEL.engine_dir, "ONNX/TensorRT artefact directory; '' = next to the checkpoint"),
    ParamSpec(
        "model.cpu_threads",
        _MODEL.cpu_threads,
        "intra-op threads for CPU inference; 0 = one per core (spins against other busy processes)",
        0,
        256,
    ),
    ParamSpec(
        "model.fast_path",
        _MODEL.fast_path,
        "torch on CUDA: off = eager; on = static KV cache + CUDA graphs; fp8 = on + FP8 decode weights "
        "(on/fp8 are CPU-verified, not yet measured on a GPU)",
        choices=FAST_PATHS,
    ),
    ParamSpec("model.warmup", True, "run one inference on a synthetic sample during configure, before reporting ready"),
    ParamSpec(
        "model.test_policy_raise",
        False,
        "TEST ONLY: with backend test_policy, predict() raises while true (exercises the error path)",
        when="live",
    ),
    ParamSpec("sync.anchor_camera", "camera_front_wide_120fov", "camera whose stamp defines t0", choices=CAMERA_NAMES),
    ParamSpec(
        "sync.tolerance_sec", 0.05, "max distance of a camera frame from the frame time it stands for", 0.001, 0.5
    ),
    ParamSpec(
        "sync.missing_camera_policy",
        "skip",
        "a model camera without a frame in tolerance: skip the cycle, hold its nearest frame, or fill black",
        choices=MISSING_CAMERA_POLICIES,
    ),
    ParamSpec(
        "sync.max_anchor_lag_sec", 0.1, "how far behind the newest anchor frame a complete sample may be", 0.0, 1.0
    ),
    ParamSpec(
        "sync.buffer_sec",
        0.6,
        "per-camera frame buffer (raw messages are kept, decoded lazily: 1080p rgb8 at 10 Hz is ~37 MB per camera)",
        0.1,
        10.0,
    ),
    ParamSpec(
        "sync.backwards_jump_sec",
        0.5,
        "a stamp this much older than its stream's newest flushes all buffers",
        0.05,
        60.0,
    ),
    ParamSpec("ego.max_gap_sec", 0.25, "longest odometry gap bridged by interpolation", 0.01, 1.0),
    ParamSpec("ego.max_extrapolation_sec", 0.1, "how far past the newest odometry t0 may lie", 0.0, 0.5),
    ParamSpec("ego.buffer_sec", 3.0, "odometry buffer length (>= 1.5 s history + max gap)", 1.0, 30.0),
    ParamSpec("output.frame_id", "base_link", "frame of ~/output/path and markers: the ego frame at t0"),
    ParamSpec(
        "output.publish_odom_path", True, "also publish ~/output/path_odom (plan composed with the t0 odometry pose)"
    ),
    ParamSpec("output.odom_frame_id", "", "frame of ~/output/path_odom; '' = the odometry header's frame"),
    ParamSpec(
        "output.marker_z_offset_m",
        0.2,
        "markers are raised by this much above the ground plane",
        -5.0,
        5.0,
        when="live",
    ),
    ParamSpec(
        "output.marker_lifetime_sec",
        3.0,
        "markers vanish this long after their plan unless a newer plan replaces them (set above the inference "
        "latency: ~1.5 s for full-size R1 on an H200 eager); a node that stops planning shows nothing stale",
        0.1,
        60.0,
        when="live",
    ),
    ParamSpec("output.text_wrap_chars", 48, "reasoning text marker line width", 10, 400, when="live"),
    ParamSpec("output.vehicle_length_m", 4.8, "ego footprint length", 0.5, 30.0, when="live"),
    ParamSpec("output.vehicle_width_m", 1.9, "ego footprint width", 0.5, 5.0, when="live"),
    ParamSpec(
        "output.rear_overhang_m", 1.0, "ego footprint: rear bumper behind the base_link origin", 0.0, 10.0, when="live"
    ),
    ParamSpec("overlay.enabled", False, "publish ~/output/overlay (front camera + projected plan + reasoning)"),
    ParamSpec("overlay.camera", "camera_front_wide_120fov", "camera the overlay draws on", choices=CAMERA_NAMES),
    ParamSpec(
        "overlay.camera_info_topic", "~/input/camera_front_wide_120fov/camera_info", "CameraInfo of the overlay camera"
    ),
    ParamSpec("overlay.mount_xyz_m", [1.7, 0.0, 1.5], "overlay camera position in base_link (x, y, z)"),
    ParamSpec(
        "overlay.mount_rpy_rad",
        [0.0, 0.0, 0.0],
        "overlay camera body orientation in base_link (roll, pitch, yaw; x forward)",
    ),
    ParamSpec("overlay.max_width_px", 960, "overlay images are downscaled to at most this width", 64, 8192),
    ParamSpec("diagnostics.period_sec", 1.0, "/diagnostics publishing period", 0.05, 60.0),
    ParamSpec(
        "log_throttle_sec", 2.0, "identical warnings are logged at most once per this period", 0.0, 600.0, when="live"
    ),
    *(spec for camera in CAMERA_NAMES for spec in _camera_specs(camera)),
)
SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAM_SPECS}


@dataclass(frozen=True)
class CameraParams:
    name: str
    topic: str
    message_type: str
    reliability: str


@dataclass(frozen=True)
class NodeParams:
    """Typed view of all parameters (attribute = ROS name with dots as underscores; cameras grouped)."""

    autostart: bool
    planning_rate_hz: float
    max_sample_age_sec: float
    publish_all_samples: bool
    model_backend: str
    model_model_path: str
    model_tokenizer_path: str
    model_device: str
    model_dtype: str
    model_max_reasoning_tokens: int
    model_num_samples: int
    model_greedy: bool
    model_temperature: float
    model_top_p: float
    model_flow_steps: int
    model_seed: int
    model_engine_dir: str
    model_fast_path: str
    model_cpu_threads: int
    model_warmup: bool
    model_test_policy_raise: bool
    sync_anchor_camera: str
    sync_tolerance_sec: float
    sync_missing_camera_policy: str
    sync_max_anchor_lag_sec: float
    sync_buffer_sec: float
    sync_backwards_jump_sec: float
    ego_max_gap_sec: float
    ego_max_extrapolation_sec: float
    ego_buffer_sec: float
    output_frame_id: str
    output_publish_odom_path: bool
    output_odom_frame_id: str
    output_marker_z_offset_m: float
    output_marker_lifetime_sec: float
    output_text_wrap_chars: int
    output_vehicle_length_m: float
    output_vehicle_width_m: float
    output_rear_overhang_m: float
    overlay_enabled: bool
    overlay_camera: str
    overlay_camera_info_topic: str
    overlay_mount_xyz_m: tuple[float, ...]
    overlay_mount_rpy_rad: tuple[float, ...]
    overlay_max_width_px: int
    diagnostics_period_sec: float
    log_throttle_sec: float
    cameras: tuple[CameraParams, ...]

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            backend=self.model_backend,
            model_path=self.model_model_path,
            tokenizer_path=self.model_tokenizer_path,
            device=self.model_device,
            dtype=self.model_dtype,
            max_reasoning_tokens=self.model_max_reasoning_tokens,
            num_samples=self.model_num_samples,
            greedy=self.model_greedy,
            temperature=self.model_temperature,
            top_p=self.model_top_p,
            flow_steps=self.model_flow_steps,
            seed=self.model_seed,
            engine_dir=self.model_engine_dir,
            fast_path=self.model_fast_path,
            cpu_threads=self.model_cpu_threads,
        )

    def camera(self, name: str) -> CameraParams:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"unknown camera {name!r}")


def default_values() -> dict[str, ParamValue]:
    return {spec.name: spec.default for spec in PARAM_SPECS}


def type_problem(spec: ParamSpec, value: Any) -> str | None:
    """Why a value cannot be a parameter of this spec's type, or None. Integral floats pass for integers and
    integers for floats: YAML and the command line ("64.0", "[1, 0, 1]") do not keep the declared type."""

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    default = spec.default
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok = number(value) and float(value).is_integer()
        kind = "an integer"
    elif isinstance(default, float):
        ok, kind = number(value), "a number"
    elif isinstance(default, list):
        ok = isinstance(value, list | tuple) and all(number(v) for v in value)
        kind = "a list of numbers"
    else:
        ok, kind = isinstance(value, str), "a string"
    return None if ok else f"{spec.name} = {value!r} is not {kind}"


def _coerce(spec: ParamSpec, value: Any) -> Any:
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
    """Build NodeParams from ROS-named values; missing names take their defaults. No validation here."""
    merged: dict[str, Any] = {**default_values(), **values}
    unknown = sorted(set(values) - set(SPECS_BY_NAME))
    if unknown:
        raise KeyError(f"unknown parameters: {', '.join(unknown)}")
    kwargs = {
        spec.attr: _coerce(spec, merged[spec.name]) for spec in PARAM_SPECS if not spec.name.startswith("cameras.")
    }
    cameras = tuple(
        CameraParams(
            name=cam,
            topic=str(merged[f"cameras.{cam}.topic"]),
            message_type=str(merged[f"cameras.{cam}.message_type"]),
            reliability=str(merged[f"cameras.{cam}.reliability"]),
        )
        for cam in CAMERA_NAMES
    )
    return NodeParams(**kwargs, cameras=cameras)


def to_values(params: NodeParams) -> dict[str, ParamValue]:
    out: dict[str, ParamValue] = {}
    for spec in PARAM_SPECS:
        if spec.name.startswith("cameras."):
            _, cam, key = spec.name.split(".")
            out[spec.name] = getattr(params.camera(cam), key)
        else:
            value = getattr(params, spec.attr)
            out[spec.name] = list(value) if isinstance(value, tuple) else value
    return out


def validate(params: NodeParams) -> list[str]:
    """Reasons the parameter set is unusable (empty = valid); each names the parameter and its value."""
    reasons: list[str] = []
    for name, value in to_values(params).items():
        spec = SPECS_BY_NAME[name]
        if isinstance(value, float) and not math.isfinite(value):
            reasons.append(f"{name} = {value} is not finite")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if spec.min_value is not None and value < spec.min_value:
                reasons.append(f"{name} = {value} is below the minimum {spec.min_value}")
            if spec.max_value is not None and value > spec.max_value:
                reasons.append(f"{name} = {value} is above the maximum {spec.max_value}")
        if spec.choices is not None and value not in spec.choices:
            reasons.append(f"{name} = {value!r} is not one of {', '.join(spec.choices)}")
    for name in ("overlay.mount_xyz_m", "overlay.mount_rpy_rad"):
        vec = getattr(params, SPECS_BY_NAME[name].attr)
        if len(vec) != 3:
            reasons.append(f"{name} = {list(vec)} must have 3 elements")
    for cam in params.cameras:
        if not cam.topic.strip():
            reasons.append(f"cameras.{cam.name}.topic is empty")
    if not params.output_frame_id.strip():
        reasons.append("output.frame_id is empty")
    span = 0.3 + params.sync_tolerance_sec + params.sync_max_anchor_lag_sec
    if params.sync_buffer_sec < span:
        reasons.append(
            f"sync.buffer_sec = {params.sync_buffer_sec} is shorter than 0.3 s of frames + tolerance + anchor lag "
            f"({span:.3f} s)"
        )
    if params.ego_buffer_sec < 1.5 + params.ego_max_gap_sec:
        reasons.append(f"ego.buffer_sec = {params.ego_buffer_sec} is shorter than 1.5 s + ego.max_gap_sec")
    try:
        params.model_spec().validate()
    except ValueError as exc:
        reasons.append(f"model: {exc}")
    return reasons


# --- generated artefacts ---------------------------------------------------------------------------------------


def _yaml_scalar(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(repr(float(v)) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _range_text(spec: ParamSpec) -> str:
    if spec.choices is not None:
        return " | ".join(spec.choices)
    if spec.min_value is not None or spec.max_value is not None:
        return f"[{spec.min_value}, {spec.max_value}]"
    return ""


def render_yaml() -> str:
    """config/alpamayo.yaml: every parameter with its default and description, nested by dotted name."""
    lines = [
        "# alpamayo_node parameters: GENERATED from alpamayo_ros/core/params.py",
        "# (python -m alpamayo_ros.core.params yaml > config/alpamayo.yaml); test/core/test_params.py checks it.",
        "# 'configure' parameters are read on the configure transition; 'live' ones apply on change.",
        f"{NODE_NAME}:",
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
        rng = _range_text(spec)
        lines.append(f"{indent}# {spec.description}{f' ({rng})' if rng else ''} [{spec.when}]")
        lines.append(f"{indent}{leaf}: {_yaml_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """README table: one row per parameter (the seven cameras' rows folded into ``cameras.<camera>.*``)."""

    def cell(text: str) -> str:
        return text.replace(CAMERA_NAMES[0], "<camera>").replace("|", "\\|")

    rows = ["| parameter | default | range | applies | description |", "|---|---|---|---|---|"]
    for spec in PARAM_SPECS:
        if spec.name.startswith("cameras.") and not spec.name.startswith(f"cameras.{CAMERA_NAMES[0]}."):
            continue
        generic = spec.name.startswith("cameras.")
        name = cell(spec.name) if generic else spec.name
        default = cell(_yaml_scalar(spec.default)) if generic else _yaml_scalar(spec.default)
        rng = ", ".join(spec.choices) if spec.choices is not None else _range_text(spec)
        description = cell(spec.description) if generic else spec.description.replace("|", "\\|")
        rows.append(f"| `{name}` | `{default}` | {rng} | {spec.when} | {description} |")
    return "\n".join(rows) + "\n"


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


def replace(params: NodeParams, values: Mapping[str, Any]) -> NodeParams:
    """A copy with some ROS-named values changed (for validating a parameter change as a transaction)."""
    return from_values({**to_values(params), **values})


def main() -> int:
    parser = argparse.ArgumentParser(description="print generated parameter artefacts")
    parser.add_argument("what", choices=("yaml", "markdown"))
    args = parser.parse_args()
    print(render_yaml() if args.what == "yaml" else render_markdown(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "PARAM_SPECS",
    "CameraParams",
    "NodeParams",
    "ParamSpec",
    "default_values",
    "from_values",
    "render_markdown",
    "render_yaml",
    "replace",
    "to_values",
    "type_problem",
    "validate",
]
