"""Tiny random-weight preset with the real Alpamayo-R1 architecture and vocabulary (untrained).

For tests, demos and CI on CPU: same module graph, tokenizer, prompt (16 images, 2880 visual tokens), expert over
the VLM cache, flow matching and action space as the real model, with small widths (the 155,697-row embedding stays,
tied to lm_head to halve it). Weights come from a seeded init; its outputs carry no meaning and every consumer must
label them untrained (ModelInfo.untrained).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.config import (
    QWEN3_VL_8B_CONFIG,
    ActionInProjConfig,
    ActionSpaceConfig,
    AlpamayoConfig,
    DeltaTokenizerConfig,
    DiscreteTokenizerConfig,
    FlowMatchingConfig,
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

_TINY_VLM: dict[str, Any] = {
    "model_type": "qwen3_vl",
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "tie_word_embeddings": True,
    "text_config": {
        "model_type": "qwen3_vl_text",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "max_position_embeddings": 262144,
        "rms_norm_eps": 1e-06,
        "rope_theta": 5000000,
        "vocab_size": 155697,
        "tie_word_embeddings": True,
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "intermediate_size": 128,
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [4, 2, 2], "rope_type": "default"},
    },
    "vision_config": {
        "model_type": "qwen3_vl",
        "hidden_act": "gelu_pytorch_tanh",
        "in_channels": 3,
        "initializer_range": 0.02,
        "num_position_embeddings": 2304,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "depth": 2,
        "hidden_size": 32,
        "num_heads": 2,
        "intermediate_size": 64,
        "out_hidden_size": 64,
        "deepstack_visual_indexes": [0, 1],
    },
    "vocab_size": 155697,
}


def tiny_config() -> AlpamayoConfig:
    cfg = AlpamayoConfig(
        vlm=copy.deepcopy(_TINY_VLM),
        expert_overrides={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "head_dim": 16},
        action_in_proj=ActionInProjConfig(hidden_size=32, num_enc_layers=2, num_fourier_feats=20, max_freq=100.0),
        action_space=R1_ACTION_SPACE,
        diffusion=FlowMatchingConfig(num_inference_steps=10),
        hist_tokenizer=DeltaTokenizerConfig(),
        traj_tokenizer=DiscreteTokenizerConfig(),
        traj_token_ids=dict(_TRAJ_TOKEN_IDS),
        tie_word_embeddings=True,
        vlm_source="preset tiny",
    )
    validate(cfg)
    return cfg


def r1_full_config() -> AlpamayoConfig:
    """The release Alpamayo-R1 architecture (Qwen3-VL-8B + 2.3B expert) for meta builds and random-weight benchmarks.

    Sizes as in the fixtures' ``alpamayo_r1_full_config.json`` (see the fixtures README for their provenance).
    """
    vlm = copy.deepcopy(QWEN3_VL_8B_CONFIG)
    vlm["text_config"]["vocab_size"] = vlm["vocab_size"] = 155697
    cfg = AlpamayoConfig(
        vlm=vlm,
        expert_overrides={"hidden_size": 2048, "intermediate_size": 8256, "num_attention_heads": 16, "head_dim": 128},
        action_in_proj=ActionInProjConfig(hidden_size=512, num_enc_layers=2, num_fourier_feats=20, max_freq=100.0),
        action_space=R1_ACTION_SPACE,
        diffusion=FlowMatchingConfig(num_inference_steps=10),
        hist_tokenizer=DeltaTokenizerConfig(),
        traj_tokenizer=DiscreteTokenizerConfig(),
        traj_token_ids=dict(_TRAJ_TOKEN_IDS),
        vlm_source="built-in Qwen/Qwen3-VL-8B-Instruct",
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
