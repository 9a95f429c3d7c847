"""Fast PyTorch GPU path of Alpamayo-R1: static KV cache, CUDA graphs for the decode step and the flow loop.

Reuses the weights of an :class:`~alpamayo_ros.model.alpamayo_r1.AlpamayoR1` (no copies, except the optional FP8
decode weights) and reproduces :func:`~alpamayo_ros.model.rollout.run_rollout`. Every step function runs eagerly on
the CPU (the parity tests) and is captured as a CUDA graph on a GPU by the thin layer in ``capture.py``.
"""

from __future__ import annotations

from alpamayo_ros.model.fast.fast_rollout import FastOptions, FastRollout

__all__ = ["FastOptions", "FastRollout"]
