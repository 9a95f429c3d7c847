"""ModelSpec: the deployment-side description of which model to run and how (the node's ``model.*`` parameters).

Architecture facts (cameras, frame offsets, image size, horizon) come from the checkpoint, never from here. Each
field is declared once with its default, range and meaning (``core.param_fields``); the node, ``evaluate`` and the
simulator read the same spec, so an offline run reproduces a node configuration exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpamayo_ros.core.param_fields import field_problems, param

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt", "test_policy")
FAST_PATHS: tuple[str, ...] = ("off", "on", "fp8")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16")
ONNX_PRECISIONS: tuple[str, ...] = ("fp32", "fp16")


@dataclass(frozen=True)
class ModelSpec:
    """Everything a runtime needs to load and run a model."""

    backend: str = param(
        "torch", "model runtime; test_policy is a deterministic test double, not a driver", choices=BACKENDS
    )
    model_path: str = param(
        "default",
        "checkpoint directory, or 'default' (the small driver shipped with the package) / 'tiny' (random weights)",
    )
    tokenizer_path: str = param("", "base VLM tokenizer/processor directory; '' = built-in offline tokenizer")
    device: str = param("auto", "auto | cpu | cuda | cuda:N")
    dtype: str = param("auto", "model dtype (auto: float32 on CPU, bfloat16 on CUDA)", choices=DTYPES)
    max_reasoning_tokens: int = param(128, "reasoning token budget (main latency lever)", min_value=1, max_value=4096)
    num_samples: int = param(
        1, "trajectory samples per inference (plan_choice picks the one planned on)", min_value=1, max_value=64
    )
    greedy: bool = param(False, "greedy reasoning decode instead of sampling")
    temperature: float = param(0.6, "reasoning sampling temperature", min_value=1e-3, max_value=10.0)
    top_p: float = param(0.98, "reasoning nucleus sampling mass", min_value=1e-3, max_value=1.0)
    flow_steps: int = param(0, "flow-matching Euler steps; 0 = the checkpoint's default", min_value=0, max_value=1000)
    seed: int = param(0, "random seed of sampling", min_value=0, max_value=2**31 - 1)
    engine_dir: str = param("", "ONNX/TensorRT artefact directory; '' = next to the checkpoint")
    # Beside other busy processes (the rest of the ROS graph) OpenMP workers spin against each other: measured on
    # our 2-core machine with one core busy, the small driver took 8.4 s per inference with 2 threads, 0.07 s with 1.
    cpu_threads: int = param(
        1,
        "intra-op threads for CPU inference; 0 = one per core (spins against other busy processes)",
        min_value=0,
        max_value=256,
    )
    fast_path: str = param(
        "off",
        "torch on CUDA: off = eager; on = static KV cache + CUDA graphs; fp8 = on + FP8 decode weights "
        "(on/fp8 are CPU-verified, not yet measured on a GPU); true/false read as on/off",
        choices=FAST_PATHS,
        aliases={True: "on", False: "off"},
    )
    onnx_precision: str = param(
        "fp32",
        "onnxruntime backend: precision of the vision and expert graphs it runs (fp16 is exported beside fp32 on "
        "first use, with norms, softmax and rope kept float32; on a CPU fp16 is no faster)",
        choices=ONNX_PRECISIONS,
    )
    warmup: bool = param(True, "run one inference on a synthetic sample during configure, before reporting ready")

    def problems(self, prefix: str = "") -> list[str]:
        """Every unusable field (range, choice, combination), each naming ``prefix`` + the field and its value."""
        problems = field_problems(self, prefix)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            problems.append(f"{prefix}device = {self.device!r} is not auto, cpu, cuda or cuda:N")
        if self.onnx_precision != "fp32" and self.backend != "onnxruntime":
            problems.append(
                f"{prefix}onnx_precision = {self.onnx_precision!r} applies to the onnxruntime backend, not "
                f"{self.backend!r} (TensorRT engines take their precision from build-engines)"
            )
        if self.fast_path != "off" and self.backend != "torch":
            problems.append(
                f"{prefix}fast_path = {self.fast_path!r} applies to the torch backend, not {self.backend!r}"
            )
        return problems

    def validate(self) -> None:
        """Raise ValueError naming every bad field."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
