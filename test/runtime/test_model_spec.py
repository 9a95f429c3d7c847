"""ModelSpec validation: every bad field is rejected with its name and value."""

from __future__ import annotations

import pytest

from alpamayo_ros.core.model_spec import ModelSpec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "tflite"}, "backend 'tflite'"),
        ({"dtype": "float16"}, "dtype 'float16'"),
        ({"device": "tpu"}, "device 'tpu'"),
        ({"max_reasoning_tokens": 0}, "max_reasoning_tokens must be >= 1, got 0"),
        ({"num_samples": 0}, "num_samples must be >= 1, got 0"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\], got 1.5"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"flow_steps": -1}, "flow_steps must be >= 0"),
        ({"fast_path": "turbo"}, "fast_path 'turbo'"),
        ({"fast_path": "on", "backend": "onnxruntime"}, "applies to the torch backend, not 'onnxruntime'"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelSpec(**changes).validate()  # type: ignore[arg-type]


def test_defaults_are_valid() -> None:
    ModelSpec().validate()
    ModelSpec(device="cuda:1", fast_path="fp8").validate()


def test_fast_path_needs_cuda() -> None:
    from alpamayo_ros.runtime.torch_backend import load_torch_model

    with pytest.raises(ValueError, match="fast_path 'on' needs a CUDA device"):
        load_torch_model(ModelSpec(model_path="tiny", device="cpu", fast_path="on"))
