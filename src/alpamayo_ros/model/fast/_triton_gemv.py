"""Triton W8A16 GEMV: out[m, n] = scale[n] * sum_k W8[n, k] * x[m, k] (fp8 weights widened in registers).

No ``from __future__ import annotations`` here on purpose: Triton reads the ``tl.constexpr`` annotations of the
kernel's parameters as objects, and the kernel must be a module-level function (Triton resolves ``tl`` through the
function's globals). Imported only where Triton exists (the GPU machines).
"""

import triton
import triton.language as tl


@triton.jit  # type: ignore[untyped-decorator]
def gemv_w8a16(x_ptr, w_ptr, s_ptr, o_ptr, K, stride_xm, stride_om, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):  # type: ignore[no-untyped-def]  # noqa: N803, PLR0917
    # One program: BLOCK_N output rows of one activation row; fp32 accumulation over K in BLOCK_K chunks (N and K
    # must be multiples of the blocks: no tail masks). Comments, not a docstring: the body is compiled by Triton.
    pid_n = tl.program_id(0)
    m = tl.program_id(1)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + m * stride_xm + cols).to(tl.float32)
        w = tl.load(w_ptr + rows[:, None] * K + cols[None, :]).to(tl.float32)
        acc += w * x[None, :]
    out = tl.sum(acc, axis=1) * tl.load(s_ptr + rows)
    tl.store(o_ptr + m * stride_om + rows, out.to(o_ptr.dtype.element_ty))
