"""FP8 (e4m3) weights for the reasoning decode: one byte per weight instead of two, per-output-row scales.

Decode is bound by reading the weights (~15 GB of decoder linears per token in bf16), so halving the bytes is the
lever, provided the kernel reads 1 byte per weight and adds few launches. Kernels (``MODES``):

* ``triton``: a weight-only W8A16 GEMV in Triton (fp8 weights loaded and widened in registers, bf16 activations,
  fp32 accumulation, per-row scale at the end): reads 1 byte per weight, one launch per linear.
* ``scaled_mm_compiled`` / ``scaled_mm``: activations quantised per row (dynamic amax / 448; the quantisation
  compiled into one kernel, or eager) and ``torch._scaled_mm`` with row-wise scales (W8A8 on the FP8 tensor cores).
* ``dequant``: reference, ``x @ (W_fp8 * scale)^T`` in the activation dtype (correct anywhere, not fast: CPU tests).

:func:`probe_mode` times the candidates that run and are accurate on the device at the real decode shapes and picks
the fastest, so an unsupported or slow kernel on a given torch/Triton build costs a note, not a failure.

Accuracy (checked in the tests): e4m3 keeps 3 mantissa bits, so each weight carries a relative error <= 2^-4; with
per-row scales and sums over K >= 64 terms an output's relative error stays ~1-3 % (W8A8 adds the activations').
Embeddings, norms, the vision tower, the expert and lm_head stay in bf16.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
MODES = ("triton", "scaled_mm_compiled", "scaled_mm", "dequant")
# (BLOCK_N, BLOCK_K, num_warps) per (N, K), filled by probe_mode's timing; the default otherwise
TRITON_CONFIGS: dict[tuple[int, int], tuple[int, int, int]] = {}
TRITON_DEFAULT = (16, 512, 4)
TRITON_CANDIDATES = ((16, 512, 4), (8, 1024, 4), (32, 256, 8))
GEMV_MAX_ROWS = 8  # beyond this many rows (samples) the Triton GEMV hands over to _scaled_mm
PROBE_TOLERANCE = 0.06  # relative L2 error of an M = 1 product (see probe_mode)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) -> fp8 values and fp32 scales (M, 1) with x ~= q * scale (symmetric, per row)."""
    xf = x.float()
    scale = xf.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    return (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


_COMPILED: dict[str, Callable[..., Any]] = {}


def _quantize_compiled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    fn = _COMPILED.get("quantize_rows")
    if fn is None:
        fn = torch.compile(quantize_rows, dynamic=False, fullgraph=True)
        _COMPILED["quantize_rows"] = fn
    out: tuple[torch.Tensor, torch.Tensor] = fn(x)
    return out


def _triton_kernel() -> Any:
    """The W8A16 GEMV kernel (imported lazily: Triton exists only on the GPU machines)."""
    kernel = _COMPILED.get("gemv")
    if kernel is None:
        from alpamayo_ros.model.fast._triton_gemv import gemv_w8a16

        kernel = _COMPILED["gemv"] = gemv_w8a16
    return kernel


class Fp8Linear:
    """A bias-free linear with weights (N, K) stored as e4m3 + per-row fp32 scales; callable like ``F.linear``."""

    def __init__(self, weight: torch.Tensor, mode: str = "dequant") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown FP8 mode {mode!r} (known: {', '.join(MODES)})")
        self.mode = mode
        self.out_features, self.in_features = (int(s) for s in weight.shape)
        self.weight, scale = quantize_rows(weight.detach())
        self.scale_row = scale.reshape(1, -1).contiguous()  # (1, N) for _scaled_mm's scale_b
        self.scale_col = scale  # (N, 1) for the reference path
        self.scale_flat = scale.reshape(-1).contiguous()  # (N,) for the GEMV
        if mode == "triton":
            block_n, block_k, _ = TRITON_CONFIGS.get((self.out_features, self.in_features), TRITON_DEFAULT)
            if self.out_features % block_n or self.in_features % block_k:
                self.mode = "scaled_mm"  # the GEMV has no tail handling

    @property
    def nbytes(self) -> int:
        return int(self.weight.numel() + self.scale_row.numel() * 4)

    def dequantized(self, dtype: torch.dtype) -> torch.Tensor:
        return (self.weight.float() * self.scale_col).to(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "dequant":
            return F.linear(x, self.dequantized(x.dtype))
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        mode = self.mode
        if mode == "triton" and x2.shape[0] > GEMV_MAX_ROWS:  # the GEMV re-reads the weights per row
            mode = "scaled_mm"
        if mode == "triton":
            x2 = x2.contiguous()
            out = torch.empty(x2.shape[0], self.out_features, device=x.device, dtype=x.dtype)
            block_n, block_k, warps = TRITON_CONFIGS.get((self.out_features, self.in_features), TRITON_DEFAULT)
            grid = (self.out_features // block_n, x2.shape[0])
            _triton_kernel()[grid](
                x2, self.weight, self.scale_flat, out, self.in_features, x2.stride(0), out.stride(0),
                BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps,
            )  # fmt: skip
            return out.reshape(*lead, self.out_features)
        quant = _quantize_compiled if mode == "scaled_mm_compiled" else quantize_rows
        xq, scale_a = quant(x2)
        out = torch._scaled_mm(
            xq, self.weight.t(), scale_a=scale_a, scale_b=self.scale_row, out_dtype=x.dtype, use_fast_accum=True
        )
        return out.reshape(*lead, self.out_features)


def _median_ms(fn: Callable[[], Any], reps: int = 30) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return float(times[len(times) // 2])


def probe_mode(
    device: torch.device,
    shapes: tuple[tuple[int, int], ...] = ((4096, 4096),),
    dtype: torch.dtype = torch.bfloat16,
    try_compile: bool = False,
) -> tuple[str, str]:
    """The fastest accurate FP8 mode on ``device`` for M = 1 products at ``shapes`` (N, K); returns (mode, note).

    Accurate = relative L2 error < ``PROBE_TOLERANCE`` against the bf16 product of the unquantised weights (random
    N(0, 0.02) weights, N(0, 1) activations: measured 0.028 weight-only, 0.038 W8A8). The Triton GEMV's block shape
    is picked per shape here too (stored in ``TRITON_CONFIGS``). ``scaled_mm_compiled`` is tried only with
    ``try_compile`` (inductor's first compile costs tens of seconds on a cold machine).
    """
    if device.type != "cuda":
        return "dequant", "CPU: reference dequantisation"
    gen = torch.Generator(device=device).manual_seed(0)
    weights = [(torch.randn(n, k, device=device, generator=gen) * 0.02).to(dtype) for n, k in shapes]
    xs = [torch.randn(1, k, device=device, generator=gen).to(dtype) for _, k in shapes]
    bf16_ms = sum(_median_ms(functools.partial(F.linear, x, w)) for w, x in zip(weights, xs, strict=True))
    notes = [f"bf16 {bf16_ms:.3f} ms"]
    timings: dict[str, float] = {}
    candidates = [m for m in MODES[:-1] if try_compile or m != "scaled_mm_compiled"]
    for mode in candidates:
        try:
            total = 0.0
            for (n, k), w, x in zip(shapes, weights, xs, strict=True):
                ref = F.linear(x.float(), w.float())
                if mode == "triton":
                    best: tuple[float, tuple[int, int, int]] | None = None
                    for cfg in TRITON_CANDIDATES:
                        if n % cfg[0] or k % cfg[1]:
                            continue
                        TRITON_CONFIGS[(n, k)] = cfg
                        lin = Fp8Linear(w, mode)
                        rel = float((lin(x).float() - ref).norm() / ref.norm())
                        if rel >= PROBE_TOLERANCE:
                            raise ValueError(f"relative error {rel:.3f} with {cfg}")
                        ms = _median_ms(functools.partial(lin, x))
                        if best is None or ms < best[0]:
                            best = (ms, cfg)
                    if best is None:
                        raise ValueError(f"no block shape divides {(n, k)}")
                    TRITON_CONFIGS[(n, k)] = best[1]
                    total += best[0]
                    continue
                lin = Fp8Linear(w, mode)
                rel = float((lin(x).float() - ref).norm() / ref.norm())
                if rel >= PROBE_TOLERANCE:
                    raise ValueError(f"relative error {rel:.3f}")
                total += _median_ms(functools.partial(lin, x))
            timings[mode] = total
            notes.append(f"{mode} {total:.3f} ms")
        except Exception as exc:  # unsupported kernel/shape on this build: note it and try the next
            notes.append(f"{mode}: {type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}")
    if not timings:
        return "dequant", "fallback dequant (" + "; ".join(notes) + ")"
    mode = min(timings, key=lambda m: timings[m])
    configs = {f"{n}x{k}": TRITON_CONFIGS.get((n, k)) for n, k in shapes} if mode == "triton" else {}
    return mode, f"{mode} chosen ({'; '.join(notes)}; shapes {list(shapes)}{'; ' + str(configs) if configs else ''})"


def decode_shapes(hidden: int, q_size: int, kv_size: int, intermediate: int) -> tuple[tuple[int, int], ...]:
    """(N, K) of the four fused decode products of one layer: qkv, o, gate_up, down."""
    return ((q_size + 2 * kv_size, hidden), (hidden, q_size), (2 * intermediate, hidden), (hidden, intermediate))
