"""ModelSpec validation: every bad field is rejected with its name and value."""

from __future__ import annotations

import pytest

from alpamayo_ros.core.model_spec import ModelSpec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "tflite"}, "backend = 'tflite' is not one of"),
        ({"dtype": "float16"}, "dtype = 'float16' is not one of"),
        ({"device": "tpu"}, "device = 'tpu' is not auto, cpu, cuda or cuda:N"),
        ({"max_reasoning_tokens": 0}, "max_reasoning_tokens = 0 is below the minimum 1"),
        ({"num_samples": 0}, "num_samples = 0 is below the minimum 1"),
        ({"top_p": 1.5}, "top_p = 1.5 is above the maximum 1.0"),
        ({"temperature": 0.0}, "temperature = 0.0 is below the minimum 0.001"),
        ({"flow_steps": -1}, "flow_steps = -1 is below the minimum 0"),
        ({"fast_path": "turbo"}, "fast_path = 'turbo' is not one of"),
        ({"fast_path": "on", "backend": "onnxruntime"}, "applies to the torch backend, not 'onnxruntime'"),
        ({"onnx_precision": "fp16"}, "onnx_precision = 'fp16' applies to the onnxruntime backend, not 'torch'"),
        ({"onnx_precision": "int4", "backend": "onnxruntime"}, "onnx_precision = 'int4' is not one of fp32, fp16"),
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
