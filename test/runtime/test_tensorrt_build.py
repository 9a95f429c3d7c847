"""The TensorRT build plan and builder calls for the 10.x and 11.x lines, against stand-in ``tensorrt`` modules.

The stand-ins are NOT TensorRT: they expose only the Python API surface this code touches, as documented for each
line (TensorRT 10.x: precision BuilderFlags FP16/BF16/FP8/INT8/OBEY_/PREFER_PRECISION_CONSTRAINTS, and
NetworkDefinitionCreationFlag.STRONGLY_TYPED from 10.12, earlier 10.x treated as weakly typed only; TensorRT 11.x: no
precision BuilderFlags, networks always strongly typed, STRONGLY_TYPED accepted), and record what the builder is
asked to do. Enum members a line lacks raise AttributeError, as the real module does. No engine is built here.
"""

from __future__ import annotations

import enum
import types
from pathlib import Path
from typing import Any

import pytest

from alpamayo_ros.runtime.onnx import EXPERT, VISION
from alpamayo_ros.runtime.tensorrt_build import EngineChoice, TensorRTVersionError, plan_build
from alpamayo_ros.runtime.tensorrt_engines import build_serialized_engine

PRECISION_FLAGS_10 = ("FP16", "BF16", "FP8", "INT8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS")
OTHER_FLAGS = ("DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE")


def standin(version: str, *, precision_flags: bool, strongly_typed_flag: bool) -> Any:
    """A stand-in ``tensorrt`` module of one line (see module doc); ``calls`` records the builder's requests."""
    calls: dict[str, list[Any]] = {"create_network": [], "set_flag": [], "memory_pool": []}
    flags = (*OTHER_FLAGS, *(PRECISION_FLAGS_10 if precision_flags else ()))
    builder_flag = enum.IntEnum("BuilderFlag", {name: i for i, name in enumerate(flags)})  # type: ignore[misc]
    network_members = {"EXPLICIT_BATCH": 0, **({"STRONGLY_TYPED": 1} if strongly_typed_flag else {})}
    network_flag = enum.IntEnum("NetworkDefinitionCreationFlag", network_members)  # type: ignore[misc]

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    class Config:
        progress_monitor: Any = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            calls["memory_pool"].append((pool, size))

        def set_flag(self, flag: Any) -> None:
            if not isinstance(flag, builder_flag):
                raise TypeError(f"set_flag takes a BuilderFlag, got {flag!r}")
            calls["set_flag"].append(flag.name)

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> object:
            calls["create_network"].append(flags)
            return object()

        def create_builder_config(self) -> Config:
            return Config()

        def build_serialized_network(self, network: object, config: Config) -> bytes:
            return b"serialized-engine"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network: object, logger: Logger) -> None:
            pass

        def parse_from_file(self, path: str) -> bool:
            return Path(path).is_file()

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    return types.SimpleNamespace(
        __version__=version,
        BuilderFlag=builder_flag,
        NetworkDefinitionCreationFlag=network_flag,
        MemoryPoolType=enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0}),
        Logger=Logger,
        Builder=Builder,
        OnnxParser=OnnxParser,
        IProgressMonitor=IProgressMonitor,
        calls=calls,
    )


def trt_10_8() -> Any:
    return standin("10.8.0.43", precision_flags=True, strongly_typed_flag=False)


def trt_10_13() -> Any:
    return standin("10.13.3.9", precision_flags=True, strongly_typed_flag=True)


def trt_11_4() -> Any:
    return standin("11.4.0.5", precision_flags=False, strongly_typed_flag=True)


def test_standins_are_strict_like_the_real_modules() -> None:
    with pytest.raises(AttributeError):
        _ = trt_11_4().BuilderFlag.FP16
    with pytest.raises(AttributeError):
        _ = trt_10_8().NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert trt_10_13().BuilderFlag.BF16.name == "BF16"


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("make", [trt_10_13, trt_11_4])
def test_strong_typing_parses_the_precision_graph_and_sets_no_precision_flag(make: Any, precision: str) -> None:
    trt = make()
    plan = plan_build(trt, precision)
    assert (plan.typing, plan.graph_precision, plan.builder_flags) == ("strong", precision, ())
    assert plan.network_flags == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert plan.tensorrt_version == trt.__version__


def test_tensorrt_11_without_the_flag_builds_with_no_network_flags() -> None:
    """11.x is strongly typed whether or not it still defines STRONGLY_TYPED: nothing to set, nothing to guess."""
    trt = standin("11.4.0.5", precision_flags=False, strongly_typed_flag=False)
    plan = plan_build(trt, "fp16")
    assert (plan.network_flags, plan.builder_flags, plan.graph_precision) == (0, (), "fp16")


@pytest.mark.parametrize(("precision", "flags"), [("fp32", ()), ("fp16", ("FP16",)), ("bf16", ("BF16",))])
@pytest.mark.parametrize("make", [trt_10_8, trt_10_13])
def test_weak_typing_on_10x_parses_the_float32_graph_with_the_legacy_flag(
    make: Any, precision: str, flags: tuple[str, ...]
) -> None:
    plan = plan_build(make(), precision, "weak")
    assert (plan.typing, plan.graph_precision, plan.network_flags, plan.builder_flags) == ("weak", "fp32", 0, flags)


def test_unsupported_combinations_name_the_version_and_what_to_do() -> None:
    with pytest.raises(TensorRTVersionError, match=r"TensorRT 10\.8\.0\.43 .*10\.12.*--typing weak"):
        plan_build(trt_10_8(), "bf16")
    with pytest.raises(TensorRTVersionError, match=r"TensorRT 11\.4\.0\.5 networks are always strongly typed.*drop"):
        plan_build(trt_11_4(), "fp16", "weak")
    with pytest.raises(TensorRTVersionError, match=r"TensorRT 9\.3\.0 is too old"):
        plan_build(standin("9.3.0", precision_flags=True, strongly_typed_flag=True), "fp16")
    no_bf16 = standin("10.2.0", precision_flags=False, strongly_typed_flag=False)
    with pytest.raises(TensorRTVersionError, match=r"TensorRT 10\.2\.0 has no BuilderFlag\.BF16"):
        plan_build(no_bf16, "bf16", "weak")
    with pytest.raises(ValueError, match="fp8 is not offered for TensorRT yet"):
        plan_build(trt_11_4(), "fp8")
    with pytest.raises(ValueError, match="typing 'loose'"):
        plan_build(trt_11_4(), "fp16", "loose")


@pytest.mark.parametrize(
    ("make", "precision", "typing", "set_flags"),
    [
        (trt_11_4, "bf16", "strong", []),
        (trt_10_13, "fp16", "strong", []),
        (trt_10_13, "bf16", "weak", ["BF16"]),
        (trt_10_8, "fp16", "weak", ["FP16"]),
    ],
)
def test_builder_receives_exactly_the_plan(
    tmp_path: Path, make: Any, precision: str, typing: str, set_flags: list[str]
) -> None:
    trt = make()
    onnx_file = tmp_path / "graph.onnx"
    onnx_file.write_bytes(b"stand-in graph")
    plan = plan_build(trt, precision, typing)
    lines: list[str] = []
    data = build_serialized_engine(onnx_file, plan, lines.append, workspace_gib=1.0, trt=trt)
    assert data == b"serialized-engine"
    assert trt.calls["create_network"] == [plan.network_flags]
    assert trt.calls["set_flag"] == set_flags
    assert trt.calls["memory_pool"] == [(trt.MemoryPoolType.WORKSPACE, 1 << 30)]


def test_engine_choice_round_trip_and_graphs(tmp_path: Path) -> None:
    assert EngineChoice.read(tmp_path) == EngineChoice({VISION: "bf16", EXPERT: "bf16"}, "strong")
    choice = EngineChoice({VISION: "fp16", EXPERT: "bf16"}, "strong")
    choice.write(tmp_path)
    assert EngineChoice.read(tmp_path) == choice
    assert choice.graph_precisions() == ("bf16", "fp16")
    assert EngineChoice({VISION: "fp16", EXPERT: "fp16"}, "weak").graph_precisions() == ()
