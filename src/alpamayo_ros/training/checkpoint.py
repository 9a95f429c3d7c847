"""The small driver's configuration and its on-disk form: the official Alpamayo-R1 checkpoint layout.

``config.json`` (``_target_`` sub-configs, ``vlm_name_or_path: "processor"``), ``model.safetensors`` and a
``processor/`` directory (tokenizer.json, chat_template.json, preprocessor_config.json and the base VLM
``config.json``), so ``model.loader.load_checkpoint`` reads it like any other checkpoint. Three keys are ours and
ignored by the official code: ``camera_names`` and ``frame_offsets_sec`` (what the node must feed: all seven
cameras, one frame each) and ``model_name``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.config import AlpamayoConfig, parse_config
from alpamayo_ros.model.loader import SINGLE_FILE, TIED_KEY
from alpamayo_ros.training.vocab import special_ids

PACKAGE_MODEL_DIR = Path(__file__).resolve().parent.parent / "resources" / "models" / "alpamayo_small_driver"
PROCESSOR_DIR = "processor"
MODEL_NAME = "alpamayo-small-driver"

# Qwen3-VL chat template reduced to what the driving prompt uses (system text, images, text; assistant prefill):
# rendered with continue_final_message it gives exactly model.processor.prompt_text.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message.role + '\\n' -}}"
    "{%- if message.content is string -%}{{- message.content -}}"
    "{%- else -%}{%- for content in message.content -%}"
    "{%- if content.type == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in content -%}{{- content.text -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if not (loop.last and message.role == 'assistant') -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class DriverSize:
    """Widths and depths of the small driver; the expert shares layers / KV heads / head_dim with the VLM."""

    text_hidden: int = 128
    text_layers: int = 4
    text_heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    text_mlp: int = 320
    expert_hidden: int = 96
    expert_mlp: int = 256
    expert_heads: int = 4
    vision_hidden: int = 64
    vision_depth: int = 2
    vision_heads: int = 2
    vision_mlp: int = 128
    vision_pos_embeddings: int = 256  # a 16 x 16 learned grid, interpolated to the image grid
    in_proj_hidden: int = 128
    fourier_max_freq: float = 10.0
    image_hw: tuple[int, int] = (64, 128)  # what the processor resizes every camera frame to
    frame_offsets_sec: tuple[float, ...] = (0.0,)
    cameras: tuple[str, ...] = field(default=CAMERA_NAMES)
    future_bins: int = 0  # discrete future-trajectory tokens are not trained here (flow matching only)
    history_bins: int = 1000  # official history quantisation (8 mm steps over +-4 m)

    def pixel_budget(self) -> tuple[int, int]:
        """(min_pixels, max_pixels) that make smart_resize land on ``image_hw`` from 16:9 frames of any size."""
        h, w = self.image_hw
        return h * w, int(h * w * 1.25)


@dataclass(frozen=True)
class ActionStats:
    """Normalisation of accel (m/s^2) / curvature (1/m) in the action space, measured on the training data."""

    accel_mean: float
    accel_std: float
    curvature_mean: float
    curvature_std: float


def vlm_config(size: DriverSize, tok: Tokenizer) -> dict[str, Any]:
    """The base Qwen3-VL config.json of the small VLM (what ``vlm_name_or_path`` points at)."""
    ids = special_ids(tok)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    half = size.head_dim // 2
    section = [half - 2 * (half * 5 // 16), half * 5 // 16, half * 5 // 16]  # official 24/20/20 of 64, scaled
    return {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": ids["image_token_id"],
        "video_token_id": ids["video_token_id"],
        "vision_start_token_id": ids["vision_start_token_id"],
        "vision_end_token_id": ids["vision_end_token_id"],
        "tie_word_embeddings": True,
        "text_config": {
            "model_type": "qwen3_vl_text",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": ids["bos_token_id"],
            "eos_token_id": ids["eos_token_id"],
            "hidden_act": "silu",
            "initializer_range": 0.02,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-06,
            "rope_theta": 10000,
            "use_cache": True,
            "vocab_size": vocab,
            "tie_word_embeddings": True,
            "num_hidden_layers": size.text_layers,
            "hidden_size": size.text_hidden,
            "num_attention_heads": size.text_heads,
            "num_key_value_heads": size.kv_heads,
            "head_dim": size.head_dim,
            "intermediate_size": size.text_mlp,
            "dtype": "float32",
            "rope_scaling": {"mrope_interleaved": True, "mrope_section": section, "rope_type": "default"},
        },
        "vision_config": {
            "model_type": "qwen3_vl",
            "hidden_act": "gelu_pytorch_tanh",
            "in_channels": 3,
            "initializer_range": 0.02,
            "num_position_embeddings": size.vision_pos_embeddings,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "depth": size.vision_depth,
            "hidden_size": size.vision_hidden,
            "num_heads": size.vision_heads,
            "intermediate_size": size.vision_mlp,
            "out_hidden_size": size.text_hidden,
            "deepstack_visual_indexes": list(range(min(2, size.vision_depth))),
        },
        "dtype": "float32",
    }


def _action_space_cfg(stats: ActionStats) -> dict[str, Any]:
    return {
        "_target_": "alpamayo_r1.action_space.unicycle_accel_curvature.UnicycleAccelCurvatureActionSpace",
        "a_lambda": 0.0001,
        "a_ridge": 0.0001,
        "accel_bounds": [-9.8, 9.8],
        "accel_mean": stats.accel_mean,
        "accel_std": stats.accel_std,
        "curvature_bounds": [-0.2, 0.2],
        "curvature_mean": stats.curvature_mean,
        "curvature_std": stats.curvature_std,
        "dt": 0.1,
        "kappa_lambda": 0.0001,
        "kappa_ridge": 0.0001,
        "n_waypoints": 64,
        "theta_lambda": 1e-06,
        "theta_ridge": 1e-08,
        "v_lambda": 1e-06,
        "v_ridge": 0.0001,
    }


def checkpoint_config(
    size: DriverSize, tok: Tokenizer, stats: ActionStats, provenance: dict[str, Any]
) -> dict[str, Any]:
    """The AlpamayoR1 ``config.json`` (official keys and ``_target_`` names, plus our three rig keys)."""
    ids = special_ids(tok)
    min_pixels, max_pixels = size.pixel_budget()
    action_space = _action_space_cfg(stats)
    return {
        "action_in_proj_cfg": {
            "_target_": "alpamayo_r1.models.action_in_proj.PerWaypointActionInProjV2",
            "hidden_size": size.in_proj_hidden,
            "max_freq": size.fourier_max_freq,
            "num_enc_layers": 2,
            "num_fourier_feats": 20,
        },
        "action_out_proj_cfg": {"_target_": "torch.nn.Linear"},
        "action_space_cfg": action_space,
        "architectures": ["AlpamayoR1"],
        "attn_implementation": "sdpa",
        "diffusion_cfg": {
            "_target_": "alpamayo_r1.diffusion.flow_matching.FlowMatching",
            "int_method": "euler",
            "num_inference_steps": 10,
        },
        "dtype": "float32",
        "expert_cfg": {
            "hidden_size": size.expert_hidden,
            "intermediate_size": size.expert_mlp,
            "num_attention_heads": size.expert_heads,
            "head_dim": size.head_dim,
        },
        "expert_non_causal_attention": True,
        "hist_traj_tokenizer_cfg": {
            "_target_": "alpamayo_r1.models.delta_tokenizer.DeltaTrajectoryTokenizer",
            "ego_xyz_max": [4, 4, 10],
            "ego_xyz_min": [-4, -4, -10],
            "num_bins": size.history_bins,
            "predict_yaw": False,
        },
        "max_pixels": max_pixels,
        "min_pixels": min_pixels,
        "model_type": "alpamayo_r1",
        "tokens_per_future_traj": 128,
        "tokens_per_history_traj": 48,
        "traj_token_ids": {
            k: ids[k] for k in ("future", "future_end", "future_start", "history", "history_end", "history_start")
        },
        "traj_token_start_idx": ids["traj_token_start_idx"],
        "traj_tokenizer_cfg": {
            "_recursive_": False,
            "_target_": "alpamayo_r1.action_space.discrete_action_space.DiscreteTrajectoryTokenizer",
            "action_space_cfg": action_space,
            "dims_max": [10.0, 10.0],
            "dims_min": [-10.0, -10.0],
            "num_bins": size.future_bins,
        },
        "traj_vocab_size": size.future_bins + size.history_bins,
        "transformers_version": "4.57.1",
        "vlm_backend": "qwenvl3",
        "vlm_name_or_path": PROCESSOR_DIR,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        # ours (ignored by the official code): what the node feeds and how the model is labelled
        "camera_names": list(size.cameras),
        "frame_offsets_sec": list(size.frame_offsets_sec),
        "model_name": MODEL_NAME,
        "training": provenance,
    }


def build_config(
    size: DriverSize, tok: Tokenizer, stats: ActionStats
) -> tuple[AlpamayoConfig, dict[str, Any], dict[str, Any]]:
    """(parsed config, raw config.json, VLM config.json); parsed by the loader's own ``parse_config``."""
    raw = checkpoint_config(size, tok, stats, {})
    vlm = vlm_config(size, tok)
    return parse_config(raw, vlm, "small driver"), raw, vlm


def save_checkpoint(
    model: AlpamayoR1,
    out_dir: Path,
    *,
    raw_config: dict[str, Any],
    vlm: dict[str, Any],
    tok: Tokenizer,
    size: DriverSize,
) -> Path:
    """Write the official layout; tied ``lm_head`` is omitted (the loader re-ties it). Returns ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = out_dir / PROCESSOR_DIR
    proc.mkdir(exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_word_embeddings:
        state.pop(TIED_KEY, None)
    tmp = out_dir / (SINGLE_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.chmod(0o644)  # safetensors writes 0600; package data must be world-readable
    tmp.replace(out_dir / SINGLE_FILE)
    (out_dir / "config.json").write_text(json.dumps(raw_config, indent=2) + "\n")
    (proc / "config.json").write_text(json.dumps(vlm, indent=2) + "\n")
    tok.save(str(proc / "tokenizer.json"))
    (proc / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2) + "\n")
    min_pixels, max_pixels = size.pixel_budget()
    preprocessor = {
        "size": {"longest_edge": max_pixels, "shortest_edge": min_pixels},
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Qwen3VLProcessor",
        "image_processor_type": "Qwen2VLImageProcessorFast",
    }
    (proc / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    ids = special_ids(tok)
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 4096,
        "image_token": "<|image_pad|>",
        "image_token_id": ids["image_token_id"],
    }
    (proc / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    return out_dir


class StartingPointError(ValueError):
    """A checkpoint named by a recipe's ``init_from`` cannot start this training; the message says why."""


@dataclass(frozen=True)
class StartingPoint:
    """What fine-tuning keeps from an earlier checkpoint: its vocabulary, its action normalisation (the weights
    predict actions normalised by it) and its weights; its training record goes into the new one's provenance."""

    tokenizer: Tokenizer
    stats: ActionStats
    weights: dict[str, torch.Tensor]
    training: dict[str, Any]


def starting_point(checkpoint_dir: Path, size: DriverSize) -> StartingPoint:
    """The small-driver checkpoint in ``checkpoint_dir``, checked to be of ``size`` (the recipe's model).

    Raises:
        StartingPointError: no such directory, no readable small-driver checkpoint there, or one of another size
            (naming the fields).
    """
    from safetensors.torch import load_file

    if not checkpoint_dir.is_dir():
        raise StartingPointError(
            f"init_from {checkpoint_dir}: no such directory (train the stage it names first, or name a checkpoint "
            "directory; 'default' is the package's small driver)"
        )
    try:
        raw = json.loads((checkpoint_dir / "config.json").read_text())
        tokenizer = Tokenizer.from_file(str(checkpoint_dir / PROCESSOR_DIR / "tokenizer.json"))
        weights = load_file(str(checkpoint_dir / SINGLE_FILE))
    except (OSError, ValueError, RuntimeError) as exc:
        raise StartingPointError(
            f"init_from {checkpoint_dir}: not a readable small-driver checkpoint ({exc})"
        ) from None
    training = raw.get("training") if isinstance(raw, dict) else None
    saved = training.get("size") if isinstance(training, dict) else None
    if not isinstance(training, dict) or not isinstance(saved, dict):
        raise StartingPointError(f"init_from {checkpoint_dir}: its config.json records no small-driver size")
    wanted = json.loads(json.dumps(asdict(size)))
    differ = sorted(key for key in wanted if saved.get(key) != wanted[key])
    if differ:
        detail = ", ".join(f"{key} {saved.get(key)} (recipe: {wanted[key]})" for key in differ)
        raise StartingPointError(f"init_from {checkpoint_dir}: another model size: {detail}")
    space = raw["action_space_cfg"]
    stats = ActionStats(
        float(space["accel_mean"]),
        float(space["accel_std"]),
        float(space["curvature_mean"]),
        float(space["curvature_std"]),
    )
    return StartingPoint(tokenizer, stats, weights, training)
