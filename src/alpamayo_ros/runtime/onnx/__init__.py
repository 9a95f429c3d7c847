"""ONNX export of the two sub-networks the onnxruntime and TensorRT backends accelerate: the vision encoder and one
action-expert step.

* ``deployment.py``: the static shapes and the host-side inputs (position and rotary tables, prefix buffers);
* ``graphs.py``: the graphs as modules, built from the fast PyTorch path's own layer code;
* ``precision.py``: graph precisions (fp32, fp16, bf16) and what stays float32;
* ``export.py``: tracing, onnxruntime verification, the export manifest.
"""

from __future__ import annotations

from alpamayo_ros.runtime.onnx.deployment import Deployment, expert_rope, prefix_buffers, vision_aux_inputs
from alpamayo_ros.runtime.onnx.export import (
    EXPORT_MANIFEST,
    OPSET,
    TOLERANCES,
    ExportError,
    ExportManifest,
    SubnetExport,
    ensure_exports,
    example_inputs,
    export_all,
    export_subnet,
    graph_key,
    manifest_problems,
    ort_session,
)
from alpamayo_ros.runtime.onnx.graphs import EXPERT, SUBNETS, VISION, ExpertStepGraph, VisionGraph, make_graph
from alpamayo_ros.runtime.onnx.precision import FP8_NOT_OFFERED, GRAPH_PRECISIONS, PrecisionError, check_precision

__all__ = [
    "EXPERT",
    "EXPORT_MANIFEST",
    "FP8_NOT_OFFERED",
    "GRAPH_PRECISIONS",
    "OPSET",
    "SUBNETS",
    "TOLERANCES",
    "VISION",
    "Deployment",
    "ExpertStepGraph",
    "ExportError",
    "ExportManifest",
    "PrecisionError",
    "SubnetExport",
    "VisionGraph",
    "check_precision",
    "ensure_exports",
    "example_inputs",
    "expert_rope",
    "export_all",
    "export_subnet",
    "graph_key",
    "make_graph",
    "manifest_problems",
    "ort_session",
    "prefix_buffers",
    "vision_aux_inputs",
]
