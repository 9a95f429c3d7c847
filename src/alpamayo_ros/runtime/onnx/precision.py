"""Graph precisions: which dtype a graph computes in, what stays float32, and how far it may be from float32.

A reduced-precision graph (fp16, bf16) carries its precision in its tensor types, as TensorRT 11 requires (strongly
typed networks, no precision builder flags) and TensorRT 10.12+ honours with ``STRONGLY_TYPED``. The matrix products
(linear and patch-embedding weights and their activations, attention scores, the prefix K/V) run in the reduced
dtype. The numerically sensitive parts stay float32: norm statistics (norm weights are kept float32, see
``model.fast.static_cache``), softmax, rotary embeddings (float32 tables), the action in-projection with its Fourier
features up to 100 Hz, and the out-projection to the velocity. The flow integration (``x += dt * v``) happens
outside the graph, in float32.

FP8 is not offered as a graph precision: it needs explicit Q/DQ nodes with calibrated scales, which the export does
not produce yet.
"""

from __future__ import annotations

import torch
from torch import nn

GRAPH_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ONNX_TYPE_NAMES: dict[str, str] = {"fp32": "FLOAT", "fp16": "FLOAT16", "bf16": "BFLOAT16"}
FP8_NOT_OFFERED = (
    "fp8 is not offered for TensorRT yet: it needs explicit Q/DQ nodes with calibrated scales, which the export "
    "does not produce; use --precision fp16 or bf16"
)


class PrecisionError(ValueError):
    """A precision that the graphs cannot be exported in."""


def check_precision(precision: str) -> torch.dtype:
    """The torch dtype of a graph precision.

    Raises:
        PrecisionError: fp8 (not offered) or an unknown name.
    """
    if precision == "fp8":
        raise PrecisionError(FP8_NOT_OFFERED)
    if precision not in DTYPES:
        raise PrecisionError(f"graph precision {precision!r} is not one of {', '.join(GRAPH_PRECISIONS)}")
    return DTYPES[precision]


def lower_matmuls(module: nn.Module, dtype: torch.dtype) -> None:
    """In place: every Linear and Conv3d of ``module`` to ``dtype``; norms and everything else stay as they are.

    The patch embedding (a Conv3d) stays float32 in bf16 graphs: ONNX's Conv has no bfloat16 type.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Linear) or (isinstance(sub, nn.Conv3d) and dtype != torch.bfloat16):
            sub.to(dtype)
