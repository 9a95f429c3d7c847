"""The thin CUDA-graph layer: the same zero-argument step function is called directly (CPU) or replayed (CUDA).

All inputs and outputs of a captured function live in static buffers owned by the caller, so replaying needs no
host work beyond ``graph.replay()``; the step functions read their loop counters from device tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class Captured:
    """``fn()`` captured once as a CUDA graph when ``enabled`` (warm-up on a side stream first), else called.

    ``reset`` runs after the warm-up; callers reset their state per use anyway (captured work is not executed).
    """

    def __init__(
        self,
        fn: Callable[[], torch.Tensor],
        enabled: bool,
        warmup: int = 2,
        reset: Callable[[], None] | None = None,
    ) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: torch.Tensor | None = None
        self.error = ""  # why capture failed (then every call runs ``fn`` eagerly)
        if not enabled:
            return
        stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):  # lazy inits (cuBLAS workspaces, autotune) must not happen during capture
                fn()
            if reset is not None:  # the warm-up advanced device-side counters
                reset()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                out = fn()
        except RuntimeError as exc:  # an op that cannot be captured: stay correct, run eagerly, say why
            torch.cuda.synchronize()
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return
        self.graph, self.out = graph, out

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self) -> torch.Tensor:
        if self.graph is None:
            return self.fn()
        self.graph.replay()
        assert self.out is not None
        return self.out
