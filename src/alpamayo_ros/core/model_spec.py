"""ModelSpec: the deployment-side description of which model to run and how (ROS parameters map onto it)."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt", "test_policy")
FAST_PATHS: tuple[str, ...] = ("off", "on", "fp8")


@dataclass(frozen=True)
class ModelSpec:
    """Everything a runtime needs to load a model. Architecture facts come from the checkpoint, not from here."""

    backend: str = "torch"  # one of BACKENDS
    # Checkpoint directory (official Alpamayo format), or a preset name: "tiny" (random, untrained) or
    # "default" (the trained small driver shipped with the package when present, else "tiny").
    model_path: str = "default"
    # Directory of the base VLM's tokenizer/processor files; "" = build the Qwen3-VL tokenizer offline.
    tokenizer_path: str = ""
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16
    max_reasoning_tokens: int = 128
    num_samples: int = 1
    greedy: bool = False
    temperature: float = 0.6
    top_p: float = 0.98
    flow_steps: int = 0  # 0 = the checkpoint's default
    seed: int = 0
    engine_dir: str = ""  # TensorRT / ONNX artefacts; "" = next to the checkpoint
    # torch backend on CUDA: "off" = eager PyTorch (verified on an H200), "on" = static KV cache + CUDA graphs
    # (model/fast; CPU-verified against eager, not yet run on a GPU), "fp8" = "on" with FP8 decode weights.
    fast_path: str = "off"
    # intra-op threads for CPU inference (0 = torch's default, one per core). 1 by default: beside other busy
    # processes (the rest of the ROS graph) OpenMP workers spin against each other; measured on our 2-core machine
    # with one core busy, the small driver took 8.4 s per inference with 2 threads and 0.07 s with 1.
    cpu_threads: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype {self.dtype!r} is not one of auto, float32, bfloat16")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device {self.device!r} is not auto, cpu, cuda or cuda:N")
        if self.max_reasoning_tokens < 1:
            raise ValueError(f"max_reasoning_tokens must be >= 1, got {self.max_reasoning_tokens}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.fast_path not in FAST_PATHS:
            raise ValueError(f"fast_path {self.fast_path!r} is not one of {', '.join(FAST_PATHS)}")
        if self.fast_path != "off" and self.backend != "torch":
            raise ValueError(f"fast_path {self.fast_path!r} applies to the torch backend, not {self.backend!r}")
        if self.cpu_threads < 0:
            raise ValueError(f"cpu_threads must be >= 0, got {self.cpu_threads}")
        if self.flow_steps < 0:
            raise ValueError(f"flow_steps must be >= 0, got {self.flow_steps}")
