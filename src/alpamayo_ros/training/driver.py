"""Load a checkpoint the way the node should: tokenizer, cameras and frame offsets from the checkpoint itself.

``model.inference.load_torch_model`` builds the Qwen3-VL tokenizer offline unless ``tokenizer_path`` is given and
feeds the four Alpamayo-R1 cameras; a checkpoint with its own vocabulary and rig (the small driver: all seven
cameras, one frame) needs three generalisations, implemented here around the same classes so that the node can
adopt them unchanged (see ``load_driving_model``): the tokenizer comes from ``<checkpoint>/<vlm_name_or_path>`` when
that directory holds a ``tokenizer.json``; cameras and frame offsets come from the config keys ``camera_names`` /
``frame_offsets_sec`` when present; the model name from ``model_name``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC, CAMERA_NAMES
from alpamayo_ros.core.types import ModelInfo
from alpamayo_ros.model.config import ConfigError
from alpamayo_ros.model.inference import AlpamayoDrivingModel, resolve_device, resolve_dtype
from alpamayo_ros.model.loader import load_checkpoint
from alpamayo_ros.model.tokenizer import check_against_config, load_tokenizer
from alpamayo_ros.runtime.spec import ModelSpec
from alpamayo_ros.training.checkpoint import PACKAGE_MODEL_DIR

LOG = logging.getLogger(__name__)


def default_model_dir() -> Path | None:
    """The shipped small driver, when the package carries its weights."""
    return PACKAGE_MODEL_DIR if (PACKAGE_MODEL_DIR / "config.json").is_file() else None


def checkpoint_tokenizer_dir(checkpoint: Path, raw: dict[str, Any]) -> Path | None:
    """``<checkpoint>/<vlm_name_or_path>`` when it is a local directory with a tokenizer.json, else None."""
    name = str(raw.get("vlm_name_or_path", ""))
    if not name:
        return None
    cand = Path(name) if Path(name).is_absolute() else checkpoint / name
    return cand if (cand / "tokenizer.json").is_file() else None


def rig_from_config(raw: dict[str, Any]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(cameras, frame offsets) the checkpoint was trained with; Alpamayo-R1's when the config does not say.

    Raises:
        ConfigError: an unknown camera name or offsets that are not ascending and <= 0.
    """
    cameras = tuple(str(c) for c in raw.get("camera_names", ALPAMAYO_R1_CAMERAS))
    offsets = tuple(float(o) for o in raw.get("frame_offsets_sec", ALPAMAYO_R1_FRAME_OFFSETS_SEC))
    unknown = [c for c in cameras if c not in CAMERA_NAMES]
    if unknown or not cameras:
        raise ConfigError(f"camera_names {list(cameras)}: unknown {unknown} (rig: {', '.join(CAMERA_NAMES)})")
    if not offsets or list(offsets) != sorted(offsets) or offsets[-1] > 0.0:
        raise ConfigError(f"frame_offsets_sec {list(offsets)} must be ascending and end at or before t0")
    return cameras, offsets


def load_driving_model(spec: ModelSpec, checkpoint: str | Path | None = None) -> AlpamayoDrivingModel:
    """A DrivingModel over ``checkpoint`` (default: ``spec.model_path``, "default" = the shipped small driver).

    Raises:
        FileNotFoundError: no such checkpoint; ConfigError / CheckpointError / TokenizerError from the loader.
    """
    spec.validate()
    if checkpoint is None:
        shipped = default_model_dir()
        checkpoint = shipped if spec.model_path == "default" and shipped is not None else spec.model_path
    path = Path(checkpoint).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no checkpoint (config.json) at {path}")
    raw: dict[str, Any] = json.loads((path / "config.json").read_text())
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    started = time.perf_counter()
    tok_dir = Path(spec.tokenizer_path) if spec.tokenizer_path else checkpoint_tokenizer_dir(path, raw)
    model, report = load_checkpoint(path, device, dtype, vlm_dir=tok_dir, progress=LOG.info)
    tokenizer = load_tokenizer(tok_dir, model.cfg.traj_vocab_size)
    check_against_config(tokenizer, model.cfg.vocab_size, model.cfg.traj_token_start_idx, model.cfg.traj_token_ids)
    cameras, offsets = rig_from_config(raw)
    info = ModelInfo(
        name=str(raw.get("model_name", "alpamayo-r1")),
        version=report.fingerprint,
        cameras=cameras,
        frame_offsets_sec=offsets,
        image_size_hw=None,
        untrained=False,
    )
    LOG.info(
        "loaded %s from %s (%d tensors, fingerprint %s) in %.1f s; cameras %s, frame offsets %s",
        info.name,
        path,
        report.num_tensors,
        report.fingerprint,
        time.perf_counter() - started,
        ", ".join(cameras),
        offsets,
    )
    return AlpamayoDrivingModel(model, tokenizer, spec, info)
