"""The Alpamayo-R1 module: Qwen3-VL (transformers) + action expert + action projections + action space.

State-dict names equal the official ones (``vlm.model.visual.*``, ``vlm.model.language_model.*``,
``vlm.lm_head.weight``, ``expert.*``, ``action_in_proj.*``, ``action_out_proj.*``, ``action_space.*``), so official
checkpoints load key for key. The stages are separate methods (vision, prefill, one decode step, one expert step)
so that timings are per stage and a static-cache / CUDA-graph fast path can replace one stage at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLTextConfig, Qwen3VLTextModel
from transformers.cache_utils import DynamicCache

from alpamayo_ros.model.action_in_proj import PerWaypointActionInProj
from alpamayo_ros.model.action_space import UnicycleAccelCurvatureActionSpace
from alpamayo_ros.model.config import AlpamayoConfig

ATTN_IMPLEMENTATION = "sdpa"  # PyTorch SDPA everywhere: no flash-attn dependency, what the fixtures used


def vlm_hf_config(cfg: AlpamayoConfig) -> Qwen3VLConfig:
    """transformers config of the VLM (vocab already overridden in ``cfg.vlm``), SDPA attention."""
    raw = {
        k: v for k, v in cfg.vlm.items() if k not in ("architectures", "dtype", "torch_dtype", "transformers_version")
    }
    hf = Qwen3VLConfig(**raw)
    hf._attn_implementation = ATTN_IMPLEMENTATION
    hf.text_config._attn_implementation = ATTN_IMPLEMENTATION
    hf.vision_config._attn_implementation = ATTN_IMPLEMENTATION
    return hf


def expert_hf_config(cfg: AlpamayoConfig) -> Qwen3VLTextConfig:
    """The expert's decoder config: the VLM text config with ``expert_cfg`` overrides (official: deepcopy + setattr)."""
    raw = {k: v for k, v in cfg.expert_text_config().items() if k not in ("dtype", "torch_dtype")}
    hf = Qwen3VLTextConfig(**raw)
    hf._attn_implementation = ATTN_IMPLEMENTATION
    return hf


@dataclass
class VisionOutput:
    image_embeds: torch.Tensor  # (num visual tokens, text hidden) merger output, all images concatenated
    deepstack: list[torch.Tensor]  # per deepstack layer, same shape


@dataclass
class ExpertContext:
    """What the expert needs from the reasoning rollout; constant over the Euler steps.

    cache: the VLM KV cache (prompt + reasoning, length ``prefix_len`` = full sequence - 1), shared by all steps and
    cropped back to ``prefix_len`` after each; position_ids (3, B*, n) = arange(n) + rope_delta + offset;
    attention_mask (B*, 1, n, prefix_len + n) additive, hiding cache columns [offset, prefix_len) per row.
    """

    cache: DynamicCache
    prefix_len: int
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    offsets: torch.Tensor  # (B*,) first position after <|traj_future_start|> (or full length when absent)


@dataclass
class ExpertStep:
    """One Euler step's tensors (for parity checks and debugging)."""

    x: torch.Tensor
    t: torch.Tensor
    in_proj: torch.Tensor
    hidden: torch.Tensor
    velocity: torch.Tensor


class AlpamayoR1(nn.Module):
    """Alpamayo-R1 vision-language-action model (inference only)."""

    def __init__(self, cfg: AlpamayoConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vlm = Qwen3VLForConditionalGeneration(vlm_hf_config(cfg))
        self.expert = Qwen3VLTextModel(expert_hf_config(cfg))
        del self.expert.embed_tokens  # the expert reads action embeddings only
        self.action_space = UnicycleAccelCurvatureActionSpace(cfg.action_space)
        n_waypoints, action_dim = self.action_space.dims
        expert_hidden = int(cfg.expert_text_config()["hidden_size"])
        self.action_in_proj = PerWaypointActionInProj(cfg.action_in_proj, action_dim, expert_hidden)
        self.action_out_proj = nn.Linear(expert_hidden, action_dim)
        self.n_action_tokens = n_waypoints
        self.tie_embeddings()

    # -- structure -------------------------------------------------------------------------------------------------
    @property
    def language_model(self) -> Qwen3VLTextModel:
        lm: Qwen3VLTextModel = self.vlm.model.language_model
        return lm

    @property
    def dtype(self) -> torch.dtype:
        return self.action_out_proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.action_out_proj.weight.device

    def tie_embeddings(self) -> None:
        """Share lm_head and embed_tokens when the VLM text config says so (then the checkpoint has no lm_head)."""
        if self.cfg.tie_word_embeddings:
            self.vlm.lm_head.weight = self.language_model.embed_tokens.weight

    # -- VLM stages ------------------------------------------------------------------------------------------------
    def encode_images(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> VisionOutput:
        """Vision tower + merger (+ deepstack mergers) for all images of the batch."""
        visual = self.vlm.model.visual
        embeds, deepstack = visual(pixel_values.to(self.device, self.dtype), grid_thw=image_grid_thw.to(self.device))
        return VisionOutput(image_embeds=embeds, deepstack=list(deepstack))

    def embed_prompt(self, input_ids: torch.Tensor, vision: VisionOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings with image features scattered into the ``<|image_pad|>`` positions."""
        embeds = self.language_model.embed_tokens(input_ids)
        image_mask = input_ids == int(self.vlm.config.image_token_id)
        if int(image_mask.sum()) != vision.image_embeds.shape[0]:
            raise ValueError(f"{int(image_mask.sum())} image tokens but {vision.image_embeds.shape[0]} image features")
        embeds = embeds.masked_scatter(image_mask[..., None].expand_as(embeds), vision.image_embeds.to(embeds.dtype))
        return embeds, image_mask

    def prefill(
        self, input_ids: torch.Tensor, vision: VisionOutput, position_ids: torch.Tensor, cache: DynamicCache
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the prompt through the decoder into ``cache``; returns (last-position logits fp32, last hidden)."""
        embeds, image_mask = self.embed_prompt(input_ids, vision)
        length = input_ids.shape[1]
        out = self.language_model(
            inputs_embeds=embeds,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            cache_position=torch.arange(length, device=input_ids.device),
            visual_pos_masks=image_mask,
            deepstack_visual_embeds=vision.deepstack,
        )
        hidden = out.last_hidden_state[:, -1]
        return self.vlm.lm_head(hidden).float(), hidden

    def decode_step(self, tokens: torch.Tensor, cache: DynamicCache, rope_deltas: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B, 1); positions = cache length + rope_delta on all three axes. Logits fp32."""
        past = cache.get_seq_length()
        batch = tokens.shape[0]
        position_ids = (rope_deltas.reshape(1, batch, 1) + past).expand(3, batch, 1)
        out = self.language_model(
            inputs_embeds=self.language_model.embed_tokens(tokens),
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            cache_position=torch.tensor([past], device=tokens.device),
        )
        logits: torch.Tensor = self.vlm.lm_head(out.last_hidden_state[:, -1]).float()
        return logits

    # -- action stages ---------------------------------------------------------------------------------------------
    def expert_context(
        self, cache: DynamicCache, sequences: torch.Tensor, rope_deltas: torch.Tensor, future_start_id: int
    ) -> ExpertContext:
        """Offsets, positions and mask of the 64 action tokens after a rollout.

        ``sequences`` (B*, prompt + generated) are all ids (the cache holds all but the last one).
        """
        n = self.n_action_tokens
        rows, full_len = sequences.shape
        prefix_len = cache.get_seq_length()
        is_start = sequences == future_start_id
        has_start = is_start.any(dim=1)
        first = is_start.int().argmax(dim=1)
        offsets = torch.where(has_start, first + 1, torch.full_like(first, full_len))
        position_ids = torch.arange(n, device=sequences.device)[None, :] + (
            rope_deltas.reshape(rows, 1) + offsets[:, None]
        )
        position_ids = position_ids[None].expand(3, rows, n).contiguous()
        mask = torch.zeros(rows, 1, n, prefix_len + n, dtype=self.dtype, device=sequences.device)
        columns = torch.arange(prefix_len + n, device=sequences.device)
        hidden = (columns[None, :] >= offsets[:, None]) & (columns[None, :] < prefix_len)
        mask.masked_fill_(hidden[:, None, None, :], torch.finfo(self.dtype).min)
        return ExpertContext(
            cache=cache, prefix_len=prefix_len, position_ids=position_ids, attention_mask=mask, offsets=offsets
        )

    def expert_step(self, ctx: ExpertContext, x: torch.Tensor, t: torch.Tensor) -> ExpertStep:
        """Velocity of the flow at (x, t): action tokens through the expert over the VLM cache, then cache crop."""
        embeds = self.action_in_proj(x, t)
        try:
            out = self.expert(
                inputs_embeds=embeds,
                position_ids=ctx.position_ids,
                attention_mask=ctx.attention_mask,
                past_key_values=ctx.cache,
                use_cache=True,
            )
        finally:
            ctx.cache.crop(ctx.prefix_len)
        hidden = out.last_hidden_state[:, -self.n_action_tokens :]
        velocity = self.action_out_proj(hidden).float()
        return ExpertStep(x=x, t=t, in_proj=embeds, hidden=hidden, velocity=velocity)
