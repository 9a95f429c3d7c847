"""Backend selection: ModelSpec -> DrivingModel. Backends are imported lazily (torch only when asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alpamayo_ros.core.model_spec import ModelSpec
    from alpamayo_ros.core.types import DrivingModel


def load_model(spec: ModelSpec) -> DrivingModel:
    """Load the model a spec names; raises ValueError / FileNotFoundError with the offending value."""
    spec.validate()
    if spec.backend == "test_policy":
        from alpamayo_ros.runtime.test_policy import TestPolicy

        return TestPolicy(spec)
    if spec.backend == "torch":
        from alpamayo_ros.runtime.torch_backend import load_torch_model

        return load_torch_model(spec)
    if spec.backend in ("onnxruntime", "tensorrt"):
        from alpamayo_ros.runtime.accelerated import load_accelerated_model

        return load_accelerated_model(spec)
    raise ValueError(f"unknown backend {spec.backend!r}")
