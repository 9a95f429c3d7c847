"""One batched Alpamayo-R1 inference: history fusion -> vision -> prefill -> reasoning -> flow matching -> waypoints.

Batch layout: B inputs (equal prompt lengths, i.e. equal image sizes), each expanded to N samples after the prefill
(the prompt is encoded once per input; the KV cache rows are repeated), so rows are ``b * N + n`` and the samples of
one input stay adjacent, as in the official ``(b ns nj)`` reshape.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers.cache_utils import DynamicCache

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1, ExpertContext, ExpertStep, VisionOutput
from alpamayo_ros.model.flow_matching import euler_sample, initial_noise
from alpamayo_ros.model.generation import DecodeTokens, LogitsHook, ReasoningResult, SamplingConfig, decode_reasoning
from alpamayo_ros.model.history import fuse_history, history_token_ids
from alpamayo_ros.model.rope import mrope_position_ids


@dataclass
class RolloutInputs:
    input_ids: torch.Tensor  # (B, L) prompt ids with <|traj_history|> placeholders
    pixel_values: torch.Tensor  # (B * images * patches, 1536)
    image_grid_thw: torch.Tensor  # (B * images, 3)
    history_xyz: torch.Tensor  # (B, 16, 3) t0 frame
    history_rot: torch.Tensor  # (B, 16, 3, 3)


@dataclass
class RolloutSettings:
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    num_samples: int = 1
    flow_steps: int = 0  # 0 = the checkpoint's default


@dataclass
class RolloutResult:
    pred_xyz: torch.Tensor  # (B, N, 64, 3) float32
    pred_rot: torch.Tensor  # (B, N, 64, 3, 3) float32
    sampled_action: torch.Tensor  # (B*N, 64, 2) normalised accel/curvature
    reasoning: ReasoningResult
    sequences: torch.Tensor  # (B*N, L + T) prompt + generation, pad after the first <|traj_future_start|>
    prompt_len: int
    timings_ms: dict[str, float]
    fused_input_ids: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None
    rope_deltas: torch.Tensor | None = None
    vision: VisionOutput | None = None
    prefill_logits: torch.Tensor | None = None
    expert_context: ExpertContext | None = None
    expert_steps: list[ExpertStep] = field(default_factory=list)


@dataclass
class Intermediates:
    """What ``keep_intermediates`` keeps of one rollout (the parity tests compare them stage by stage)."""

    position_ids: torch.Tensor
    rope_deltas: torch.Tensor
    vision: VisionOutput
    prefill_logits: torch.Tensor | None
    expert_context: ExpertContext | None = None
    expert_steps: list[ExpertStep] = field(default_factory=list)


def replace_after_marker(sequences: torch.Tensor, marker: int, pad: int) -> torch.Tensor:
    """Tokens after the first ``marker`` of each row become ``pad`` (official replace_padding_after_eos)."""
    length = sequences.shape[1]
    positions = torch.arange(length, device=sequences.device)[None, :]
    first = (
        torch.where(sequences == marker, positions, torch.full_like(sequences, length)).min(dim=1, keepdim=True).values
    )
    return sequences.masked_fill(positions > first, pad)


class StageClock:
    """Stage wall-clock in ms (laps of one name add up); synchronises CUDA so device work lands in its stage."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.ms: dict[str, float] = {}
        self._t = self._now()

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def lap(self, name: str) -> None:
        now = self._now()
        self.ms[name] = self.ms.get(name, 0.0) + (now - self._t) * 1000.0
        self._t = now


def prepare_prompt(
    model: AlpamayoR1, inputs: RolloutInputs, tokens: DecodeTokens
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """History tokens fused into their placeholders, and the 3-axis mRoPE positions of the prompt.

    Returns (fused ids (B, L), position ids (3, B, L), rope deltas (B, 1)) on the model's device.
    """
    device, cfg = model.device, model.cfg
    ids = inputs.input_ids.to(device)
    hist_ids = history_token_ids(inputs.history_xyz.to(device), cfg.hist_tokenizer, cfg.hist_token_start_idx)
    fused = fuse_history(ids, hist_ids, tokens.history_placeholder)
    merge = int(model.vlm.config.vision_config.spatial_merge_size)
    position_ids, rope_deltas = mrope_position_ids(
        fused, inputs.image_grid_thw, int(model.vlm.config.image_token_id), merge
    )
    return fused, position_ids, rope_deltas


def actions_to_waypoints(
    model: AlpamayoR1, inputs: RolloutInputs, action: torch.Tensor, num_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled (B*N, 64, 2) normalised actions -> waypoints (B*N, 64, 3) and rotations (B*N, 64, 3, 3), integrated
    in float32 from each row's own history (samples of one input are adjacent rows)."""
    device = action.device
    hist_xyz = inputs.history_xyz.to(device, torch.float32).repeat_interleave(num_samples, dim=0)
    hist_rot = inputs.history_rot.to(device, torch.float32).repeat_interleave(num_samples, dim=0)
    xyz, rot = model.action_space.action_to_traj(action, hist_xyz, hist_rot)
    return xyz, rot


def finish_rollout(
    model: AlpamayoR1,
    inputs: RolloutInputs,
    tokens: DecodeTokens,
    clock: StageClock,
    *,
    action: torch.Tensor,
    reasoning: ReasoningResult,
    sequences: torch.Tensor,
    fused: torch.Tensor,
    num_samples: int,
    kept: Intermediates | None,
) -> RolloutResult:
    """Sampled actions -> waypoints (the end of the ``action`` stage), then the result of one rollout (eager and
    fast paths alike): (B*N) rows reshaped to (B, N), sequences padded after the marker."""
    xyz, rot = actions_to_waypoints(model, inputs, action, num_samples)
    clock.lap("action")
    batch = int(fused.shape[0])
    return RolloutResult(
        pred_xyz=xyz.reshape(batch, num_samples, *xyz.shape[1:]),
        pred_rot=rot.reshape(batch, num_samples, *rot.shape[1:]),
        sampled_action=action,
        reasoning=reasoning,
        sequences=replace_after_marker(sequences, tokens.future_start, tokens.pad),
        prompt_len=int(fused.shape[1]),
        timings_ms=clock.ms,
        fused_input_ids=fused if kept is not None else None,
        position_ids=kept.position_ids if kept is not None else None,
        rope_deltas=kept.rope_deltas if kept is not None else None,
        vision=kept.vision if kept is not None else None,
        prefill_logits=kept.prefill_logits if kept is not None else None,
        expert_context=kept.expert_context if kept is not None else None,
        expert_steps=kept.expert_steps if kept is not None else [],
    )


@torch.inference_mode()
def run_rollout(
    model: AlpamayoR1,
    inputs: RolloutInputs,
    settings: RolloutSettings,
    tokens: DecodeTokens,
    *,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    keep_intermediates: bool = False,
    on_logits: LogitsHook | None = None,
    prefill_hook: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> RolloutResult:
    """Run the whole model; timings: preprocess (fusion + rope), vision, prefill, decode, action."""
    device = model.device
    clock = StageClock(device)
    cfg = model.cfg
    n = settings.num_samples
    fused, position_ids, rope_deltas = prepare_prompt(model, inputs, tokens)
    clock.lap("preprocess")

    vision = model.encode_images(inputs.pixel_values, inputs.image_grid_thw)
    clock.lap("vision")

    cache = DynamicCache(config=model.language_model.config)
    logits, last_hidden = model.prefill(fused, vision, position_ids, cache)
    if prefill_hook is not None:
        prefill_hook(logits, last_hidden)
    prefill_logits = logits.clone() if keep_intermediates else None
    if n > 1:
        cache.batch_repeat_interleave(n)
        logits = logits.repeat_interleave(n, dim=0)
    row_deltas = rope_deltas.repeat_interleave(n, dim=0)
    clock.lap("prefill")

    def step(token: torch.Tensor) -> torch.Tensor:
        return model.decode_step(token, cache, row_deltas)

    reasoning = decode_reasoning(step, logits, settings.sampling, tokens, generator, on_logits=on_logits)
    sequences = torch.cat([fused.repeat_interleave(n, dim=0), reasoning.tokens], dim=1)
    clock.lap("decode")

    ctx = model.expert_context(cache, sequences, row_deltas, tokens.future_start)
    rows = sequences.shape[0]
    if noise is None:
        noise = initial_noise(rows, model.action_space.dims, generator, device, torch.float32)
    steps: list[ExpertStep] = []

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = model.expert_step(ctx, x, t)
        if keep_intermediates:
            steps.append(out)
        return out.velocity

    num_steps = settings.flow_steps or cfg.diffusion.num_inference_steps
    action = euler_sample(velocity, noise.to(device, torch.float32), num_steps)
    kept = Intermediates(position_ids, rope_deltas, vision, prefill_logits, ctx, steps) if keep_intermediates else None
    return finish_rollout(model, inputs, tokens, clock, action=action, reasoning=reasoning, sequences=sequences,
                          fused=fused, num_samples=n, kept=kept)  # fmt: skip
