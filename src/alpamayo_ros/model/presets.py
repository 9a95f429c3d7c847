"""Tiny random-weight preset with the real Alpamayo-R1 architecture and vocabulary (untrained).

For tests, demos and CI on CPU: same module graph, tokenizer, prompt (16 images, 2880 visual tokens), expert over
the VLM cache, flow matching and action space as the real model, with small widths (the 155,697-row embedding stays,
tied to lm_head to halve it). Weights come from a seeded init; its outputs carry no meaning and every consumer must
label them untrained (ModelInfo.untrained).
"""

from __future__ import annotations

from typing import Any

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.config import (
    QWEN3_VL_8B_CONFIG,
    R1_VOCAB_SIZE,
    ActionInProjConfig,
    ActionSpaceConfig,
    AlpamayoConfig,
    DeltaTokenizerConfig,
    DiscreteTokenizerConfig,
    FlowMatchingConfig,
    derive_vlm_config,
    validate,
)

PRESETS: tuple[str, ...] = ("tiny",)

# Release action-space normalisation (the same numbers as the official config).
R1_ACTION_SPACE = ActionSpaceConfig(
    accel_mean=0.02902694707164455,
    accel_std=0.6810426736454882,
    curvature_mean=0.0002692167976330542,
    curvature_std=0.026148280660833106,
    curvature_bounds=(-0.2, 0.2),
)

_TRAJ_TOKEN_IDS = {
    "future": 155685,
    "future_end": 155683,
    "future_start": 155681,
    "history": 155684,
    "history_end": 155676,
    "history_start": 155674,
}

# The tiny preset's VLM: Qwen3-VL-8B narrowed to the widths of the official tiny fixture A, with tied embeddings
# (the 155,697-row embedding dominates the size, so sharing it with lm_head halves the preset). float32 because
# transformers initialises the text decoder in the config's dtype, and the 8B's bfloat16 would round the seeded
# weights.
_TINY_VLM_OVERRIDES: dict[str, Any] = {
    "tie_word_embeddings": True,
    "dtype": "float32",
    "text_config": {
        "dtype": "float32",
        "tie_word_embeddings": True,
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "intermediate_size": 128,
        "rope_scaling": {"mrope_section": [4, 2, 2]},
    },
    "vision_config": {
        "depth": 2,
        "hidden_size": 32,
        "num_heads": 2,
        "intermediate_size": 64,
        "out_hidden_size": 64,
        "deepstack_visual_indexes": [0, 1],
    },
}


def tiny_config() -> AlpamayoConfig:
    """The ``tiny`` preset: the R1 structure at fixture-A widths (expert 32 wide, in-projection 32)."""
    return _r1_structure(
        vlm=derive_vlm_config(QWEN3_VL_8B_CONFIG, R1_VOCAB_SIZE, _TINY_VLM_OVERRIDES),
        expert_overrides={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "head_dim": 16},
        in_proj_hidden=32,
        vlm_source="preset tiny",
    )


def r1_full_config() -> AlpamayoConfig:
    """The release Alpamayo-R1 architecture (Qwen3-VL-8B + 2.3B expert) for meta builds and random-weight benchmarks.

    Sizes as in the fixtures' ``alpamayo_r1_full_config.json`` (see the fixtures README for their provenance).
    """
    return _r1_structure(
        vlm=derive_vlm_config(QWEN3_VL_8B_CONFIG, R1_VOCAB_SIZE),
        expert_overrides={"hidden_size": 2048, "intermediate_size": 8256, "num_attention_heads": 16, "head_dim": 128},
        in_proj_hidden=512,
        vlm_source="built-in Qwen/Qwen3-VL-8B-Instruct",
    )


def _r1_structure(
    vlm: dict[str, Any], expert_overrides: dict[str, Any], in_proj_hidden: int, vlm_source: str
) -> AlpamayoConfig:
    """What every R1-shaped config shares: release action space, 10 Euler steps, official tokenizers and token ids."""
    cfg = AlpamayoConfig(
        vlm=vlm,
        expert_overrides=expert_overrides,
        action_in_proj=ActionInProjConfig(
            hidden_size=in_proj_hidden, num_enc_layers=2, num_fourier_feats=20, max_freq=100.0
        ),
        action_space=R1_ACTION_SPACE,
        diffusion=FlowMatchingConfig(num_inference_steps=10),
        hist_tokenizer=DeltaTokenizerConfig(),
        traj_tokenizer=DiscreteTokenizerConfig(),
        traj_token_ids=dict(_TRAJ_TOKEN_IDS),
        tie_word_embeddings=bool(vlm["text_config"]["tie_word_embeddings"]),
        vlm_source=vlm_source,
    )
    validate(cfg)
    return cfg


def build_preset(
    name: str, seed: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> AlpamayoR1:
    """A seeded random-init model; ``action_out_proj`` scaled by 0.01 (as the fixtures do) to keep the flow tame.

    Raises:
        ValueError: unknown preset name.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AlpamayoR1(tiny_config())
        with torch.no_grad():
            model.action_out_proj.weight.mul_(0.01)
            model.action_out_proj.bias.mul_(0.01)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
