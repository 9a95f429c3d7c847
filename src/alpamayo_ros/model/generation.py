"""Reasoning decode loop (own loop, not ``generate``), with the official stopping and masking rules.

* Trajectory-bin tokens (``<i0>``..``<i3999>``) get -inf before sampling, in place (official ExpertLogitsProcessor).
* Sampling: temperature, then top-k (optional), then top-p (HF semantics: drop the low tail whose cumulative
  probability is <= 1 - top_p, keep at least one), multinomial with a seedable generator; or greedy argmax.
* A row that emits an eos id (``<|im_end|>``, ``<|endoftext|>``) is finished and receives pad from then on.
* Stop one token after every row has emitted ``<|traj_future_start|>`` (the KV cache then holds it), when all rows
  are finished, or at the token budget. The last sampled token is never fed back (cache = sequence - 1).

``step`` is any callable (B, 1) ids -> (B, V) logits, so a static-cache / CUDA-graph step can replace the eager one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from alpamayo_ros.core.model_spec import ModelSpec

StepFn = Callable[[torch.Tensor], torch.Tensor]
LogitsHook = Callable[[int, torch.Tensor], None]


@dataclass(frozen=True)
class SamplingConfig:
    """How reasoning tokens are drawn; the defaults are the deployment's (``ModelSpec``), declared there once."""

    max_new_tokens: int = ModelSpec.max_reasoning_tokens
    greedy: bool = ModelSpec.greedy
    temperature: float = ModelSpec.temperature
    top_p: float = ModelSpec.top_p
    top_k: int | None = None


@dataclass(frozen=True)
class DecodeTokens:
    """Ids the rollout needs (looked up by string in the tokenizer, like the official code)."""

    traj_start: int
    traj_vocab_size: int
    future_start: int
    pad: int
    eos: tuple[int, ...]
    history_placeholder: int


@dataclass
class ReasoningResult:
    """Generated ids (B*, T) as sampled (pad after an eos), and per-row flags."""

    tokens: torch.Tensor
    found_future_start: torch.Tensor  # (B*,) bool
    finished_eos: torch.Tensor  # (B*,) bool: stopped by <|im_end|> / <|endoftext|> without trajectory marker
    num_tokens: torch.Tensor  # (B*,) tokens up to and including <|traj_future_start|> (or until eos/budget)
    # (B*, T) natural log of each generated token's probability under the model's own distribution (softmax of the
    # masked logits at temperature 1, before any sampling warp); 0 on pad. None where a decode loop does not keep it.
    token_logprobs: torch.Tensor | None = None

    @property
    def truncated(self) -> torch.Tensor:
        """The budget ran out before ``<|traj_future_start|>`` (the expert still runs, on the whole reasoning)."""
        return ~self.found_future_start & ~self.finished_eos


def mask_trajectory_tokens(logits: torch.Tensor, start: int, size: int) -> torch.Tensor:
    logits[:, start : start + size] = float("-inf")
    return logits


def warp_scores(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Temperature, then top-k, then top-p (the smallest set of tokens holding top_p of the mass stays): (B, V)
    masked logits -> scores with the dropped tokens at -inf. Shared by the eager loop and the graphed decode step;
    host-sync free, so it can be captured."""
    scores = logits / cfg.temperature
    if cfg.top_k is not None and cfg.top_k > 0:
        kth = torch.topk(scores, min(cfg.top_k, scores.shape[-1]), dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative <= (1.0 - cfg.top_p)
        drop_sorted[..., -1:] = False
        scores = scores.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))
    return scores


def select_next(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> torch.Tensor:
    """(B, V) fp32 masked logits -> (B,) next ids."""
    if cfg.greedy:
        return logits.argmax(dim=-1)
    probs = warp_scores(logits, cfg).softmax(dim=-1)
    if generator is not None and generator.device != probs.device:
        sampled = torch.multinomial(probs.to(generator.device), 1, generator=generator).to(probs.device)
    else:
        sampled = torch.multinomial(probs, 1, generator=generator)
    return sampled.squeeze(-1)


def decode_reasoning(
    step: StepFn,
    first_logits: torch.Tensor,
    cfg: SamplingConfig,
    ids: DecodeTokens,
    generator: torch.Generator | None = None,
    *,
    on_logits: LogitsHook | None = None,
) -> ReasoningResult:
    """Sample up to ``cfg.max_new_tokens`` tokens per row starting from the prefill logits (B*, V)."""
    if cfg.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {cfg.max_new_tokens}")
    rows = first_logits.shape[0]
    device = first_logits.device
    eos = torch.tensor(ids.eos, device=device)
    found = torch.zeros(rows, dtype=torch.bool, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    num_tokens = torch.zeros(rows, dtype=torch.int64, device=device)
    out: list[torch.Tensor] = []
    logprobs: list[torch.Tensor] = []
    logits = first_logits
    for i in range(cfg.max_new_tokens):
        logits = mask_trajectory_tokens(logits.float(), ids.traj_start, ids.traj_vocab_size)
        if on_logits is not None:
            on_logits(i, logits)
        token = select_next(logits, cfg, generator)
        token = torch.where(finished, torch.full_like(token, ids.pad), token)
        out.append(token)
        chosen = torch.log_softmax(logits, dim=-1).gather(1, token[:, None])[:, 0]
        logprobs.append(torch.where(finished, torch.zeros_like(chosen), chosen))
        num_tokens += (~found & ~finished).long()  # counts up to and including the marker / eos
        all_found_before = bool(found.all())  # StopAfterEOS: one more token after every row had the marker
        found |= token == ids.future_start
        finished |= torch.isin(token, eos)
        if all_found_before or bool(finished.all()):
            break
        if i + 1 < cfg.max_new_tokens:
            logits = step(token[:, None])
    tokens = torch.stack(out, dim=1)
    return ReasoningResult(
        tokens=tokens,
        found_future_start=found,
        finished_eos=finished & ~found,
        num_tokens=num_tokens,
        token_logprobs=torch.stack(logprobs, dim=1),
    )
