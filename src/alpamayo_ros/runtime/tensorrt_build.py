"""How to build an engine on the installed TensorRT: network typing and builder flags per version line.

TensorRT 11 removed every precision-enabling builder flag (``FP16``, ``BF16``, ``FP8``, ``INT8``,
``OBEY/PREFER_PRECISION_CONSTRAINTS``): networks are always strongly typed and each layer runs in its tensors'
types, so the precision has to be in the ONNX graph (``runtime/onnx/precision.py``). TensorRT 10 (the line JetPack
and DRIVE Orin ship) makes strong typing opt-in with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` from 10.12,
and still offers the deprecated weak typing, where a float32 graph plus precision flags lets the builder choose.

Typing modes: ``strong`` (default) parses the graph exported in the requested precision and sets no precision flag;
``weak`` (legacy, TensorRT 10 only, on request) parses the float32 graph and sets the precision flag. The plan is
read from the module's version and attributes, never guessed: an attribute the version lacks is an error naming
the version and what to do. Pure Python over the ``tensorrt`` module object, so it is tested against stand-ins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpamayo_ros.runtime.onnx.graphs import EXPERT, VISION
from alpamayo_ros.runtime.onnx.precision import FP8_NOT_OFFERED, GRAPH_PRECISIONS

TYPINGS: tuple[str, ...] = ("strong", "weak")
STRONG_TYPING_SINCE = (10, 12)
# weak typing: the builder flag that lets TensorRT pick each reduced precision for a float32 graph
WEAK_FLAGS: dict[str, tuple[str, ...]] = {"fp32": (), "fp16": ("FP16",), "bf16": ("BF16",)}
CHOICE_FILE = "tensorrt_precisions.json"  # written by build-engines, read by the tensorrt backend


def _default_precisions() -> dict[str, str]:
    return {VISION: "bf16", EXPERT: "bf16"}


@dataclass(frozen=True)
class EngineChoice:
    """The engine precision per sub-network and the network typing, as ``build-engines`` chose them (the node's
    tensorrt backend builds or reuses the same engines)."""

    precisions: dict[str, str] = field(default_factory=_default_precisions)
    typing: str = "strong"

    def graph_precisions(self) -> tuple[str, ...]:
        """The reduced-precision graphs these engines parse (none when weakly typed: the float32 graphs)."""
        if self.typing == "weak":
            return ()
        return tuple(sorted(set(self.precisions.values()) - {"fp32"}))

    def write(self, out_dir: Path) -> Path:
        path = out_dir / CHOICE_FILE
        path.write_text(json.dumps({**self.precisions, "typing": self.typing}, indent=2) + "\n")
        return path

    @staticmethod
    def read(out_dir: Path) -> EngineChoice:
        """The choice in ``out_dir`` (the defaults where build-engines never ran there)."""
        path = out_dir / CHOICE_FILE
        if not path.is_file():
            return EngineChoice()
        body = json.loads(path.read_text())
        precisions = _default_precisions()
        precisions.update({k: str(body[k]) for k in precisions if k in body})
        return EngineChoice(precisions, str(body.get("typing", "strong")))


class TensorRTVersionError(RuntimeError):
    """The installed TensorRT cannot build the requested precision / typing (the message says what to do)."""


@dataclass(frozen=True)
class BuildPlan:
    """What ``build_serialized_engine`` does for one engine."""

    tensorrt_version: str
    precision: str  # requested engine precision (fp32, fp16, bf16)
    typing: str  # strong | weak
    graph_precision: str  # precision of the ONNX graph to parse (= precision when strong, fp32 when weak)
    network_flags: int  # bit mask for Builder.create_network
    builder_flags: tuple[str, ...]  # BuilderFlag names to set (weak typing only)


def version_tuple(version: str) -> tuple[int, int]:
    """'10.13.0.35' -> (10, 13).

    Raises:
        TensorRTVersionError: not a dotted version.
    """
    try:
        major, minor = version.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise TensorRTVersionError(f"cannot read the TensorRT version {version!r}") from None


def _strongly_typed_flag(trt: Any, version: str, required: bool) -> int:
    """``1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (0 where the line has no such flag and needs none)."""
    try:
        flag = trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    except AttributeError:
        if required:
            raise TensorRTVersionError(
                f"TensorRT {version} has no NetworkDefinitionCreationFlag.STRONGLY_TYPED: install TensorRT >= 10.12 "
                "for strongly typed engines, or pass --typing weak (deprecated weak typing)"
            ) from None
        return 0
    return 1 << int(flag)


def plan_build(trt: Any, precision: str, typing: str = "strong") -> BuildPlan:
    """The network typing and flags for ``precision`` on the installed ``trt`` module.

    Raises:
        TensorRTVersionError: an unsupported combination (TensorRT < 10; strong typing on 10.0-10.11; weak typing on
            11+; a flag the installed version lacks); ValueError: unknown precision or typing; fp8 (not offered).
    """
    if precision == "fp8":
        raise ValueError(FP8_NOT_OFFERED)
    if precision not in GRAPH_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(GRAPH_PRECISIONS)}")
    if typing not in TYPINGS:
        raise ValueError(f"typing {typing!r} is not one of {', '.join(TYPINGS)}")
    version = str(trt.__version__)
    major, minor = version_tuple(version)
    if major < 10:
        raise TensorRTVersionError(f"TensorRT {version} is too old: install TensorRT 10.12+ or 11")
    if typing == "strong":
        if major == 10 and (major, minor) < STRONG_TYPING_SINCE:
            raise TensorRTVersionError(
                f"TensorRT {version} cannot build strongly typed networks (STRONGLY_TYPED arrived in 10.12): "
                "upgrade to TensorRT >= 10.12, or pass --typing weak (deprecated weak typing)"
            )
        # 10.12+: opt in; 11+: always strongly typed, the flag (where it is still defined) is accepted and ignored
        flags = _strongly_typed_flag(trt, version, required=major == 10)
        return BuildPlan(version, precision, typing, precision, flags, ())
    if major >= 11:
        raise TensorRTVersionError(
            f"TensorRT {version} networks are always strongly typed (weak typing and its precision builder flags "
            "were removed in 11): drop --typing weak; the precision then comes from the exported graph"
        )
    for name in WEAK_FLAGS[precision]:
        if not hasattr(trt.BuilderFlag, name):
            raise TensorRTVersionError(
                f"TensorRT {version} has no BuilderFlag.{name} for weak-typed {precision}: use --typing strong"
            )
    return BuildPlan(version, precision, typing, "fp32", 0, WEAK_FLAGS[precision])
