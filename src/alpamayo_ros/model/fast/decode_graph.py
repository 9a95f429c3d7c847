"""Reasoning decode over the static cache: one step = embed -> 36 layers -> lm_head -> mask -> sample -> record.

All loop state is on the device (step counter, fed tokens, eos/marker flags, a ``done`` flag), so one step is one
CUDA graph replayed with no host synchronisation; the host reads ``done`` only every ``check_every`` steps and then
trims the tokens exactly as the eager loop (``generation.decode_reasoning``) would have stopped. Sampling inside the
graph: trajectory-token mask (an additive -inf row, also for extra banned ids), temperature, top-k, top-p with the
eager code's rule, then Gumbel-max over noise drawn before the loop from the caller's generator (``multinomial`` is
not graph-safe). Greedy decoding is token-for-token the eager result; sampled decoding has the same distribution but
other random draws than ``torch.multinomial``.
"""

from __future__ import annotations

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.fast.static_cache import (
    GroupedAttention,
    LayerLinears,
    StaticKV,
    decoder_layer,
    grouped_attention,
    rms_norm,
    rope_tables,
)
from alpamayo_ros.model.generation import DecodeTokens, ReasoningResult, SamplingConfig, warp_scores


class StaticDecoder:
    """Device-resident state and the step function of the reasoning decode for a fixed (rows, prompt, budget)."""

    def __init__(
        self,
        model: AlpamayoR1,
        kv: StaticKV,
        linears: list[LayerLinears],
        *,
        prompt_len: int,
        sampling: SamplingConfig,
        tokens: DecodeTokens,
        banned: tuple[int, ...] = (),
        attend: GroupedAttention = grouped_attention,
    ) -> None:
        self.model, self.kv, self.linears, self.attend = model, kv, linears, attend
        self.prompt_len, self.sampling, self.ids = prompt_len, sampling, tokens
        self.max_new = sampling.max_new_tokens
        if prompt_len + self.max_new > kv.capacity:
            raise ValueError(f"prompt {prompt_len} + budget {self.max_new} exceeds the cache capacity {kv.capacity}")
        lm = model.language_model
        cfg = lm.config
        self.heads, self.kv_heads = int(cfg.num_attention_heads), int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads))
        self.lm_head = model.vlm.lm_head
        device, rows = model.device, kv.rows
        vocab = int(model.vlm.lm_head.weight.shape[0])
        self.tokens_buf = torch.zeros(rows, self.max_new, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)  # index of the token fed next
        self.found = torch.zeros(rows, dtype=torch.bool, device=device)
        self.finished = torch.zeros(rows, dtype=torch.bool, device=device)
        self.done = torch.zeros((), dtype=torch.bool, device=device)
        self.cos = torch.zeros(rows, self.max_new, self.head_dim, dtype=model.dtype, device=device)
        self.sin = torch.zeros_like(self.cos)
        self.logits = torch.zeros(rows, vocab, dtype=torch.float32, device=device)  # last masked logits
        self.vocab_mask = torch.zeros(vocab, dtype=torch.float32, device=device)
        self.vocab_mask[tokens.traj_start : tokens.traj_start + tokens.traj_vocab_size] = float("-inf")
        if banned:
            self.vocab_mask[list(banned)] = float("-inf")
        self.gumbel = (
            None if sampling.greedy else torch.zeros(self.max_new, rows, vocab, dtype=torch.float32, device=device)
        )
        self.columns = torch.arange(kv.capacity, device=device)
        self.eos = torch.tensor(tokens.eos, dtype=torch.long, device=device)

    # -- sampling and bookkeeping (also used once for the prefill logits, outside the graph) ------------------------
    def _select(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        masked = logits.float() + self.vocab_mask
        self.logits.copy_(masked)
        cfg = self.sampling
        if cfg.greedy or self.gumbel is None:
            return masked.argmax(dim=-1)
        scores = warp_scores(masked, cfg)
        # Gumbel-max: argmax(log p + g) ~ Categorical(p); softmax's constant shift does not change the argmax
        return (scores + self.gumbel.index_select(0, index)[0]).argmax(dim=-1)

    def _record(self, token: torch.Tensor, index: torch.Tensor) -> None:
        token = torch.where(self.finished, torch.full_like(token, self.ids.pad), token)
        all_found_before = self.found.all()
        self.found |= token == self.ids.future_start
        self.finished |= (token[:, None] == self.eos).any(dim=-1)  # isin without a data-dependent path
        self.done |= all_found_before | self.finished.all()
        self.tokens_buf.index_copy_(1, index, token[:, None])

    def reset(self, first_logits: torch.Tensor, rope_deltas: torch.Tensor, generator: torch.Generator | None) -> None:
        """Per call: rope tables for the decode positions, fresh noise, counters; sample the first token."""
        rows = self.kv.rows
        positions = self.prompt_len + torch.arange(self.max_new, device=self.step.device)[None, :]
        positions = positions + rope_deltas.reshape(rows, 1).to(self.step.device)
        cos, sin = rope_tables(self.model.language_model.rotary_emb, positions, self.cos.dtype)
        self.cos.copy_(cos)
        self.sin.copy_(sin)
        if self.gumbel is not None:
            gen_device = generator.device if generator is not None else self.gumbel.device
            uniform = torch.rand(self.gumbel.shape, generator=generator, device=gen_device, dtype=torch.float32)
            self.gumbel.copy_(-torch.log(-torch.log(uniform.clamp_(min=1e-20, max=1.0 - 1e-7))))
        self.step.zero_()
        self.found.zero_()
        self.finished.zero_()
        self.done.zero_()
        self._record(self._select(first_logits, self.step), self.step)

    # -- the captured step ------------------------------------------------------------------------------------------
    def __call__(self) -> torch.Tensor:
        """Feed token ``step`` (position prompt_len + step), sample token ``step + 1``; returns ``done``."""
        lm = self.model.language_model
        token = self.tokens_buf.index_select(1, self.step)
        h = lm.embed_tokens(token)
        cos = self.cos.index_select(1, self.step)[:, :, None]  # (rows, 1, 1, d)
        sin = self.sin.index_select(1, self.step)[:, :, None]
        position = self.step + self.prompt_len
        mask = (self.columns <= position).view(1, 1, 1, -1)

        def write(keys: torch.Tensor, values: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
            keys.index_copy_(2, position, k)
            values.index_copy_(2, position, v)

        view = slice(0, self.kv.capacity)
        for i, layer in enumerate(lm.layers):
            h = decoder_layer(
                layer, self.linears[i], h, cos=cos, sin=sin, store=self.kv.store(i, write, view), mask=mask,
                heads=self.heads, kv_heads=self.kv_heads, head_dim=self.head_dim, attend=self.attend,
            )  # fmt: skip
        logits = self.lm_head(rms_norm(h, lm.norm)[:, -1])
        self.step.add_(1)
        self._record(self._select(logits, self.step), self.step)
        return self.done


def trim_reasoning(tokens: torch.Tensor, ids: DecodeTokens) -> ReasoningResult:
    """The eager loop's stop rule replayed on already generated (pad-replaced) tokens (rows, S): same result."""
    host = tokens.cpu()
    rows, length = host.shape
    eos = torch.tensor(ids.eos)
    found = torch.zeros(rows, dtype=torch.bool)
    finished = torch.zeros(rows, dtype=torch.bool)
    num = torch.zeros(rows, dtype=torch.int64)
    stop = length
    for i in range(length):
        token = host[:, i]
        num += (~found & ~finished).long()
        all_found_before = bool(found.all())
        found |= token == ids.future_start
        finished |= torch.isin(token, eos)
        if all_found_before or bool(finished.all()):
            stop = i + 1
            break
    device = tokens.device
    return ReasoningResult(
        tokens=tokens[:, :stop].clone(),
        found_future_start=found.to(device),
        finished_eos=(finished & ~found).to(device),
        num_tokens=num.to(device),
    )
