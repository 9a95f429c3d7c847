"""Typed view of an official Alpamayo-R1 ``config.json`` (no Hydra at run time).

The official config stores its sub-modules as Hydra ``_target_`` dicts; the targets this package implements are
listed in ``SUPPORTED_TARGETS`` and anything else fails with the offending name. The VLM architecture is *not* in
this file: like the official loader, it is read from the base VLM's ``config.json`` named by ``vlm_name_or_path``
(a directory, possibly relative to the checkpoint, or a known hub id for which a built-in copy is used), with the
vocabulary size overridden by the checkpoint's.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_TYPES: tuple[str, ...] = ("alpamayo_r1",)

# Alpamayo-R1 vocabulary: Qwen3-VL's 151,669 tokens, 4,000 trajectory bins and 28 Alpamayo specials.
R1_VOCAB_SIZE = 155697

# _target_ name -> role. Hydra names of the official package (alpamayo_r1.*).
SUPPORTED_TARGETS: dict[str, str] = {
    "alpamayo_r1.models.action_in_proj.PerWaypointActionInProjV2": "action_in_proj",
    "torch.nn.Linear": "action_out_proj",
    "alpamayo_r1.action_space.unicycle_accel_curvature.UnicycleAccelCurvatureActionSpace": "action_space",
    "alpamayo_r1.diffusion.flow_matching.FlowMatching": "diffusion",
    "alpamayo_r1.models.delta_tokenizer.DeltaTrajectoryTokenizer": "hist_traj_tokenizer",
    "alpamayo_r1.action_space.discrete_action_space.DiscreteTrajectoryTokenizer": "traj_tokenizer",
}

# Qwen3-VL-8B config.json (public), used when vlm_name_or_path is a hub id and no local directory is given:
# the architecture is all the loader needs from it (weights come from the checkpoint).
QWEN3_VL_8B_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen3VLForConditionalGeneration"],
    "model_type": "qwen3_vl",
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "tie_word_embeddings": False,
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
        "use_cache": True,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
        "num_hidden_layers": 36,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "intermediate_size": 12288,
        "dtype": "bfloat16",
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
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
        "depth": 27,
        "hidden_size": 1152,
        "num_heads": 16,
        "intermediate_size": 4304,
        "out_hidden_size": 4096,
        "deepstack_visual_indexes": [8, 16, 24],
    },
    "dtype": "bfloat16",
}
# Hub ids known to carry the Qwen3-VL-8B architecture (Cosmos-Reason2-8B is a fine-tune of it).
BUILTIN_VLM_CONFIGS: dict[str, dict[str, Any]] = {
    "Qwen/Qwen3-VL-8B-Instruct": QWEN3_VL_8B_CONFIG,
    "nvidia/Cosmos-Reason2-8B": QWEN3_VL_8B_CONFIG,
}


class ConfigError(ValueError):
    """The checkpoint config is malformed or names something this package does not implement."""


@dataclass(frozen=True)
class ActionInProjConfig:
    hidden_size: int = 512
    num_enc_layers: int = 2
    num_fourier_feats: int = 20
    max_freq: float = 100.0


@dataclass(frozen=True)
class ActionSpaceConfig:
    """Unicycle acceleration/curvature action space; the smoothing weights only matter for traj_to_action."""

    accel_mean: float = 0.0
    accel_std: float = 1.0
    curvature_mean: float = 0.0
    curvature_std: float = 1.0
    accel_bounds: tuple[float, float] = (-9.8, 9.8)
    curvature_bounds: tuple[float, float] = (-0.33, 0.33)
    dt: float = 0.1
    n_waypoints: int = 64
    theta_lambda: float = 1e-6
    theta_ridge: float = 1e-8
    v_lambda: float = 1e-6
    v_ridge: float = 1e-4
    a_lambda: float = 1e-4
    a_ridge: float = 1e-4
    kappa_lambda: float = 1e-4
    kappa_ridge: float = 1e-4


@dataclass(frozen=True)
class FlowMatchingConfig:
    num_inference_steps: int = 10
    int_method: str = "euler"


@dataclass(frozen=True)
class DeltaTokenizerConfig:
    """History tokenizer: per-step xyz deltas quantised into num_bins over [xyz_min, xyz_max]."""

    num_bins: int = 1000
    xyz_min: tuple[float, float, float] = (-4.0, -4.0, -10.0)
    xyz_max: tuple[float, float, float] = (4.0, 4.0, 10.0)
    predict_yaw: bool = False


@dataclass(frozen=True)
class DiscreteTokenizerConfig:
    """Future-trajectory tokenizer (training only here): its bin count fixes where history bins start."""

    num_bins: int = 3000
    dims_min: tuple[float, ...] = (-10.0, -10.0)
    dims_max: tuple[float, ...] = (10.0, 10.0)


@dataclass(frozen=True)
class AlpamayoConfig:
    """Everything needed to build the model; ``vlm`` is the base Qwen3-VL config dict with the vocab overridden."""

    vlm: dict[str, Any]
    expert_overrides: dict[str, Any]
    action_in_proj: ActionInProjConfig
    action_space: ActionSpaceConfig
    diffusion: FlowMatchingConfig
    hist_tokenizer: DeltaTokenizerConfig
    traj_tokenizer: DiscreteTokenizerConfig
    vocab_size: int = R1_VOCAB_SIZE
    traj_vocab_size: int = 4000
    traj_token_start_idx: int = 151669
    traj_token_ids: dict[str, int] = field(default_factory=dict)
    tokens_per_history_traj: int = 48
    tokens_per_future_traj: int = 128
    min_pixels: int = 163840
    max_pixels: int = 196608
    expert_non_causal_attention: bool = True
    tie_word_embeddings: bool = False
    model_type: str = "alpamayo_r1"
    vlm_source: str = ""  # where the VLM architecture came from (provenance for the load log)

    @property
    def hist_token_start_idx(self) -> int:
        """History bins follow the future-action bins (official: traj_token_start_idx + traj tokenizer vocab)."""
        return self.traj_token_start_idx + self.traj_tokenizer.num_bins

    @property
    def text_config(self) -> dict[str, Any]:
        text: dict[str, Any] = self.vlm["text_config"]
        return text

    def expert_text_config(self) -> dict[str, Any]:
        """The expert's decoder config: a copy of the VLM text config with the expert overrides applied."""
        cfg = copy.deepcopy(self.text_config)
        cfg.update(self.expert_overrides)
        return cfg


def derive_vlm_config(base: dict[str, Any], vocab_size: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of a base Qwen3-VL config with ``overrides`` merged in and the vocabulary set to ``vocab_size``.

    Nested dicts merge key by key (so ``{"text_config": {"hidden_size": 64}}`` changes one width and keeps the rest);
    any other value, lists included, replaces the base's. The vocabulary is set in both places transformers reads it
    (top level and ``text_config``), as the official loader does: the checkpoint's Alpamayo tokens extend the base's.
    """
    vlm = _merged(base, overrides or {})
    vlm["text_config"]["vocab_size"] = vocab_size
    vlm["vocab_size"] = vocab_size
    return vlm


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _target(cfg: dict[str, Any], role: str) -> dict[str, Any]:
    name = cfg.get("_target_")
    if name is None:
        raise ConfigError(f"{role}: missing _target_")
    if SUPPORTED_TARGETS.get(name) != role:
        raise ConfigError(
            f"{role}: unsupported _target_ {name!r}; supported: "
            + ", ".join(k for k, v in SUPPORTED_TARGETS.items() if v == role)
        )
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def _build(cls: type[Any], values: dict[str, Any], role: str, rename: dict[str, str] | None = None) -> Any:
    fields = set(cls.__dataclass_fields__)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = (rename or {}).get(key, key)
        if name not in fields:
            if name in _IGNORED_KEYS.get(role, ()):
                continue
            raise ConfigError(f"{role}: unsupported key {key!r}")
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


# Keys of official sub-configs that configure objects this package does not build (documented, not errors).
_IGNORED_KEYS: dict[str, tuple[str, ...]] = {"traj_tokenizer": ("action_space_cfg",)}


def resolve_vlm_config(
    vlm_name_or_path: str, checkpoint_dir: Path | None, override_dir: str | Path | None
) -> tuple[dict[str, Any], str]:
    """Find the base VLM config.json: override dir, then a directory (relative to the checkpoint), then built-ins.

    Raises:
        ConfigError: none of these exists.
    """
    candidates: list[Path] = []
    if override_dir:
        candidates.append(Path(override_dir))
    if vlm_name_or_path:
        path = Path(vlm_name_or_path)
        if not path.is_absolute() and checkpoint_dir is not None:
            candidates.append(checkpoint_dir / path)
        candidates.append(path)
    for cand in candidates:
        if (cand / "config.json").is_file():
            return json.loads((cand / "config.json").read_text()), str(cand / "config.json")
        if cand.is_file() and cand.suffix == ".json":
            return json.loads(cand.read_text()), str(cand)
    if vlm_name_or_path in BUILTIN_VLM_CONFIGS:
        return copy.deepcopy(BUILTIN_VLM_CONFIGS[vlm_name_or_path]), f"built-in {vlm_name_or_path}"
    tried = ", ".join(str(c) for c in candidates) or "(none)"
    raise ConfigError(
        f"cannot find the base VLM config for vlm_name_or_path={vlm_name_or_path!r}: tried {tried}; pass the base "
        f"VLM directory (its config.json) as tokenizer_path, or use one of {', '.join(BUILTIN_VLM_CONFIGS)}"
    )


def parse_config(raw: dict[str, Any], vlm_config: dict[str, Any], vlm_source: str = "") -> AlpamayoConfig:
    """Turn a loaded official config.json plus the base VLM config into an AlpamayoConfig.

    Raises:
        ConfigError: wrong model_type, unknown ``_target_`` or key, or an expert that cannot read the VLM cache.
    """
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"model_type {model_type!r} is not supported (supported: {', '.join(MODEL_TYPES)})")
    if raw.get("vlm_backend", "qwenvl3") != "qwenvl3":
        raise ConfigError(f"vlm_backend {raw.get('vlm_backend')!r} is not supported (only qwenvl3)")
    if vlm_config.get("model_type") != "qwen3_vl":
        raise ConfigError(f"base VLM model_type {vlm_config.get('model_type')!r} is not qwen3_vl ({vlm_source})")
    vocab_size = int(raw.get("vocab_size", R1_VOCAB_SIZE))
    vlm = derive_vlm_config(vlm_config, vocab_size)
    tie = bool(vlm["text_config"].get("tie_word_embeddings", False))

    diffusion = _build(FlowMatchingConfig, _target(raw["diffusion_cfg"], "diffusion"), "diffusion")
    if diffusion.int_method != "euler":
        raise ConfigError(f"diffusion: int_method {diffusion.int_method!r} is not supported (only euler)")
    _target(raw.get("action_out_proj_cfg", {"_target_": "torch.nn.Linear"}), "action_out_proj")
    hist = _build(
        DeltaTokenizerConfig,
        _target(raw["hist_traj_tokenizer_cfg"], "hist_traj_tokenizer"),
        "hist_traj_tokenizer",
        rename={"ego_xyz_min": "xyz_min", "ego_xyz_max": "xyz_max"},
    )
    if hist.predict_yaw:
        raise ConfigError("hist_traj_tokenizer: predict_yaw=true is not supported")
    cfg = AlpamayoConfig(
        vlm=vlm,
        expert_overrides=dict(raw.get("expert_cfg") or {}),
        action_in_proj=_build(
            ActionInProjConfig, _target(raw["action_in_proj_cfg"], "action_in_proj"), "action_in_proj"
        ),
        action_space=_build(ActionSpaceConfig, _target(raw["action_space_cfg"], "action_space"), "action_space"),
        diffusion=diffusion,
        hist_tokenizer=hist,
        traj_tokenizer=_build(
            DiscreteTokenizerConfig, _target(raw["traj_tokenizer_cfg"], "traj_tokenizer"), "traj_tokenizer"
        ),
        vocab_size=vocab_size,
        traj_vocab_size=int(raw.get("traj_vocab_size", 4000)),
        traj_token_start_idx=int(raw.get("traj_token_start_idx", vocab_size - 4028)),
        traj_token_ids={k: int(v) for k, v in (raw.get("traj_token_ids") or {}).items()},
        tokens_per_history_traj=int(raw.get("tokens_per_history_traj", 48)),
        tokens_per_future_traj=int(raw.get("tokens_per_future_traj", 128)),
        min_pixels=int(raw.get("min_pixels", 163840)),
        max_pixels=int(raw.get("max_pixels", 196608)),
        expert_non_causal_attention=bool(raw.get("expert_non_causal_attention", True)),
        tie_word_embeddings=tie,
        model_type=str(model_type),
        vlm_source=vlm_source,
    )
    validate(cfg)
    return cfg


# Upper bounds on the sizes a config may declare, checked before anything is allocated: several times Alpamayo-R1's
# own (36 layers, width 4096, MLP 12288, 27 vision blocks of width 1152, a 155k vocabulary), far below what would
# exhaust a vehicle computer while a hostile or corrupt config.json is being built.
SIZE_LIMITS: dict[str, dict[str, int]] = {
    "text_config": {
        "num_hidden_layers": 256,
        "hidden_size": 32_768,
        "intermediate_size": 131_072,
        "num_attention_heads": 512,
        "num_key_value_heads": 512,
        "head_dim": 1024,
        "vocab_size": 1_048_576,
    },
    "vision_config": {"depth": 256, "hidden_size": 16_384, "intermediate_size": 65_536, "num_heads": 512},
}


def size_problems(cfg: AlpamayoConfig) -> list[str]:
    """Every declared size that is not a positive integer within ``SIZE_LIMITS``, named with its value."""
    problems = []
    for section, limits in SIZE_LIMITS.items():
        values = cfg.vlm.get(section, {})
        for key, limit in limits.items():
            value = values.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
                problems.append(f"{section}.{key} = {value!r} is not an integer in [1, {limit}]")
    return problems


def validate(cfg: AlpamayoConfig) -> None:
    """Sizes within ``SIZE_LIMITS``; the expert reads VLM layer i's KV cache: layer count, KV heads and head_dim must
    match."""
    problems = size_problems(cfg)
    if problems:
        raise ConfigError("; ".join(problems))
    text, expert = cfg.text_config, cfg.expert_text_config()
    for key in ("num_hidden_layers", "num_key_value_heads", "head_dim"):
        if text.get(key) != expert.get(key):
            raise ConfigError(f"expert {key}={expert.get(key)} must equal the VLM's {text.get(key)}")
    if cfg.traj_tokenizer.num_bins + cfg.hist_tokenizer.num_bins != cfg.traj_vocab_size:
        raise ConfigError(
            f"traj_vocab_size {cfg.traj_vocab_size} != future bins {cfg.traj_tokenizer.num_bins} + history bins "
            f"{cfg.hist_tokenizer.num_bins}"
        )
    if cfg.tokens_per_history_traj != 3 * 16:
        raise ConfigError(f"tokens_per_history_traj {cfg.tokens_per_history_traj} != 48 (16 poses x xyz)")


def load_config(checkpoint_dir: str | Path, vlm_dir: str | Path | None = None) -> AlpamayoConfig:
    """Read ``checkpoint_dir/config.json`` and the base VLM config it names (or ``vlm_dir``)."""
    ckpt = Path(checkpoint_dir)
    path = ckpt / "config.json"
    if not path.is_file():
        raise ConfigError(f"no config.json in {ckpt}")
    raw = json.loads(path.read_text())
    vlm, source = resolve_vlm_config(str(raw.get("vlm_name_or_path", "")), ckpt, vlm_dir)
    return parse_config(raw, vlm, source)
