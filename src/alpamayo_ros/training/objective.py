"""Joint training loss through the inference code path: language loss on the reasoning + flow matching on actions.

One teacher-forced VLM pass over ``prompt <|cot_start|> reasoning <|cot_end|> <|traj_future_start|> pad...`` fills
a KV cache exactly like the reasoning rollout does (same ``mrope`` positions, same deepstack injection); the expert
then runs on noisy action tokens over that cache with ``AlpamayoR1.expert_context`` / ``expert_step``, the very
functions inference uses (offset right after ``<|traj_future_start|>``, right-padding hidden by the same mask).
Flow matching as in the official model: x_t = t*x + (1-t)*eps, velocity target x - eps, t ~ U(0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.training.scene_probe import SceneProbe, scene_loss

IGNORE = -100


@dataclass
class TrainBatch:
    """A collated batch (all rows share the prompt length; reasoning is right-padded after the future marker)."""

    input_ids: torch.Tensor  # (B, L) with history ids fused into the placeholders
    labels: torch.Tensor  # (B, L) next-token targets at the position of the token, IGNORE elsewhere
    position_ids: torch.Tensor  # (3, B, L) mRoPE
    rope_deltas: torch.Tensor  # (B, 1)
    pixel_values: torch.Tensor  # (B * images * patches, 1536)
    image_grid_thw: torch.Tensor  # (B * images, 3)
    actions: torch.Tensor  # (B, 64, 2) normalised accel / curvature

    def to(self, device: torch.device) -> TrainBatch:
        return TrainBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class LossParts:
    total: torch.Tensor
    lm: torch.Tensor
    flow: torch.Tensor
    token_accuracy: float
    scene: torch.Tensor | None = None  # the auxiliary scene-probe loss, when one is trained


def joint_loss(
    model: AlpamayoR1,
    batch: TrainBatch,
    future_start_id: int,
    *,
    flow_samples: int = 2,
    flow_weight: float = 1.0,
    generator: torch.Generator | None = None,
    scene: tuple[SceneProbe, torch.Tensor] | None = None,
    scene_weight: float = 1.0,
) -> LossParts:
    """Language loss (mean over reasoning tokens) + ``flow_weight`` * flow-matching MSE (``flow_samples`` draws)
    [+ ``scene_weight`` * the scene probe's loss on the image tokens, given (probe, multi-hot targets)]."""
    ids = batch.input_ids
    vision = model.encode_images(batch.pixel_values, batch.image_grid_thw)
    scene_part = scene_loss(scene[0], vision.image_embeds, scene[1]) if scene is not None else None
    embeds, image_mask = model.embed_prompt(ids, vision)
    cache = DynamicCache(config=model.language_model.config)
    out = model.language_model(
        inputs_embeds=embeds,
        position_ids=batch.position_ids,
        past_key_values=cache,
        use_cache=True,
        cache_position=torch.arange(ids.shape[1], device=ids.device),
        visual_pos_masks=image_mask,
        deepstack_visual_embeds=vision.deepstack,
    )
    labels = batch.labels
    keep = labels != IGNORE
    hidden = out.last_hidden_state[keep]
    logits = model.vlm.lm_head(hidden).float()
    targets = labels[keep]
    lm = F.cross_entropy(logits, targets)
    token_accuracy = float((logits.argmax(-1) == targets).float().mean()) if targets.numel() else 0.0

    k = flow_samples
    if k > 1:
        cache.batch_repeat_interleave(k)
    rows = ids.shape[0] * k
    seq = ids.repeat_interleave(k, dim=0)
    ctx = model.expert_context(cache, seq, batch.rope_deltas.repeat_interleave(k, dim=0), future_start_id)
    x1 = batch.actions.repeat_interleave(k, dim=0).to(torch.float32)
    eps = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
    t = torch.rand((rows, 1, 1), generator=generator, dtype=x1.dtype, device=x1.device)
    xt = t * x1 + (1.0 - t) * eps
    velocity = model.expert_step(ctx, xt, t).velocity
    flow = F.mse_loss(velocity, x1 - eps)
    total = lm + flow_weight * flow
    if scene_part is not None:
        total = total + scene_weight * scene_part
    return LossParts(total=total, lm=lm, flow=flow, token_accuracy=token_accuracy, scene=scene_part)
