"""FP8 (e4m3) weights for the reasoning decode: one byte per weight instead of two, per-output-row scales.

Decode is bound by reading the weights (~15 GB of decoder linears per token in bf16), so halving the bytes is the
lever. Kernels, chosen by :func:`probe_mode` on the device at set-up:

* ``scaled_mm``: activations quantised per row (dynamic amax / 448) and ``torch._scaled_mm`` with row-wise scales
  (Hopper FP8 tensor cores, bf16 output): W8A8 at M = 1.
* ``scaled_mm_pad16``: the same with the rows padded to 16 (for builds that refuse M = 1).
* ``dequant``: reference, ``x @ (W_fp8 * scale)^T`` in the activation dtype (correct anywhere, not faster: CPU tests).

Accuracy (documented, checked in the tests): e4m3 keeps 3 mantissa bits, so each weight carries a relative error
<= 2^-4 (6.25 %); with per-row scales and sums over K >= 64 terms the relative error of an output stays ~1-3 %.
Embeddings, norms, the vision tower, the expert and (by default) lm_head stay in bf16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
MODES = ("scaled_mm", "scaled_mm_pad16", "dequant")


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) -> fp8 values and fp32 scales (M, 1) with x ~= q * scale (symmetric, per row)."""
    xf = x.float()
    scale = xf.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    return (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


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
        rows = x2.shape[0]
        if self.mode == "scaled_mm_pad16" and rows % 16:
            x2 = F.pad(x2, (0, 0, 0, 16 - rows % 16))
        xq, scale_a = quantize_rows(x2)
        out = torch._scaled_mm(
            xq, self.weight.t(), scale_a=scale_a, scale_b=self.scale_row, out_dtype=x.dtype, use_fast_accum=True
        )
        return out[:rows].reshape(*lead, self.out_features)


def probe_mode(device: torch.device, dtype: torch.dtype = torch.bfloat16) -> tuple[str, str]:
    """The fastest FP8 mode that runs on ``device`` and is accurate on a random (1, 256) x (256, 128)^T product;
    returns (mode, note)."""
    if device.type != "cuda":
        return "dequant", "CPU: reference dequantisation"
    gen = torch.Generator(device=device).manual_seed(0)
    w = torch.randn(128, 256, device=device, generator=gen).to(dtype)
    x = torch.randn(1, 256, device=device, generator=gen).to(dtype)
    ref = F.linear(x.float(), w.float())
    notes = []
    for mode in MODES[:2]:
        try:
            out = Fp8Linear(w, mode)(x).float()
            rel = float((out - ref).norm() / ref.norm())
            if rel < 0.1:
                return mode, f"{mode} (relative error {rel:.3f} on the probe)"
            notes.append(f"{mode}: relative error {rel:.3f}")
        except (RuntimeError, TypeError, ValueError) as exc:  # unsupported shape/scaling on this build
            notes.append(f"{mode}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    return "dequant", "fallback dequant (" + "; ".join(notes) + ")"
