"""The node-facing torch backend: ``load_torch_model(spec) -> DrivingModel`` for Alpamayo-R1.

``spec.fast_path`` on/fp8 swaps the eager rollout for ``model.fast`` (static KV cache + CUDA graphs, CUDA only).
``spec.model_path`` is a checkpoint directory (official layout; ours may add ``camera_names``, ``frame_offsets_sec``,
``model_name`` and a tokenizer in their processor folder), "default" (the small driver shipped in
``resources/models``, trained on the synthetic scenarios; the "tiny" preset when absent) or "tiny" (random weights,
untrained). Images: per camera (T, H, W, 3) uint8 RGB of any size, resized by the model's own processor rule (the
official 1080x1920 -> 320x576). Ego history in the t0 frame. float32 on CPU, bfloat16 on CUDA unless ``spec.dtype``
says otherwise; attention through PyTorch SDPA.

Sampling is a pure function of (weights, input, seed): each call seeds its generator from ``spec.seed`` and the
sample's ``t0_ns``, so a replay gives the same output and two calls on different frames do not share noise.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.rig import ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC, CAMERA_NAMES, HISTORY_STEPS
from alpamayo_ros.core.types import ModelInfo, ModelInput, Prediction, StageTimings
from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.coc import reasoning_from_ids
from alpamayo_ros.model.config import ConfigError
from alpamayo_ros.model.fast import FastOptions, FastRollout
from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig
from alpamayo_ros.model.loader import load_checkpoint
from alpamayo_ros.model.presets import PRESETS, build_preset
from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids
from alpamayo_ros.model.rollout import RolloutInputs, RolloutSettings, run_rollout
from alpamayo_ros.model.tokenizer import check_against_config, load_tokenizer, token_ids

logger = logging.getLogger(__name__)
# The package's default model: the small driver trained on the synthetic scenarios (tools/train), when shipped.
SHIPPED_DRIVER_DIR = Path(__file__).resolve().parents[1] / "resources" / "models" / "alpamayo_small_driver"


def resolve_model_path(model_path: str) -> str:
    """ "default" -> the shipped small driver when the package carries it, else the untrained "tiny" preset."""
    if model_path == "default":
        return str(SHIPPED_DRIVER_DIR) if (SHIPPED_DRIVER_DIR / "config.json").is_file() else "tiny"
    return model_path


def rig_from_config(raw: dict[str, Any]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(cameras, frame offsets) a checkpoint was trained with; Alpamayo-R1's four cameras x four frames by default.

    The official config has no such keys; checkpoints of ours (the small driver: all seven cameras) add
    ``camera_names`` and ``frame_offsets_sec``.

    Raises:
        ConfigError: an unknown camera name, or offsets that are not ascending and at or before t0.
    """
    cameras = tuple(str(c) for c in raw.get("camera_names", ALPAMAYO_R1_CAMERAS))
    offsets = tuple(float(o) for o in raw.get("frame_offsets_sec", ALPAMAYO_R1_FRAME_OFFSETS_SEC))
    unknown = [c for c in cameras if c not in CAMERA_NAMES]
    if unknown or not cameras:
        raise ConfigError(f"camera_names {list(cameras)}: unknown {unknown} (rig: {', '.join(CAMERA_NAMES)})")
    if not offsets or list(offsets) != sorted(offsets) or offsets[-1] > 0.0:
        raise ConfigError(f"frame_offsets_sec {list(offsets)} must be ascending and end at or before t0")
    return cameras, offsets


def _checkpoint_tokenizer_dir(checkpoint: Path, raw: dict[str, Any]) -> Path | None:
    """``<checkpoint>/<vlm_name_or_path>`` when it is a local folder holding a tokenizer.json (our checkpoints ship
    their own small vocabulary there); None for the official layout, whose tokenizer is built offline."""
    name = str(raw.get("vlm_name_or_path", ""))
    if not name:
        return None
    candidate = Path(name) if Path(name).is_absolute() else checkpoint / name
    return candidate if (candidate / "tokenizer.json").is_file() else None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def per_call_seed(seed: int, t0_ns: int) -> int:
    return (seed * 1_000_003 + t0_ns) % (2**63 - 1)


class AlpamayoDrivingModel:
    """Alpamayo-R1 behind the DrivingModel protocol (one ModelInput -> Prediction with S samples)."""

    def __init__(self, model: AlpamayoR1, tokenizer: Tokenizer, spec: ModelSpec, info: ModelInfo) -> None:
        self.model: AlpamayoR1 | None = model
        self.tokenizer = tokenizer
        self.spec = spec
        self._info = info
        ids = token_ids(tokenizer, model.cfg.traj_vocab_size)
        self.tokens = DecodeTokens(
            traj_start=ids.traj_start,
            traj_vocab_size=ids.traj_vocab_size,
            future_start=ids.traj_future_start,
            pad=ids.pad,
            eos=(ids.im_end, ids.pad),
            history_placeholder=ids.traj_history,
        )
        vision = model.vlm.config.vision_config
        self.image_cfg = ImageProcessorConfig(
            patch_size=int(vision.patch_size),
            temporal_patch_size=int(vision.temporal_patch_size),
            merge_size=int(vision.spatial_merge_size),
            min_pixels=model.cfg.min_pixels,
            max_pixels=model.cfg.max_pixels,
        )
        self.settings = RolloutSettings(
            sampling=SamplingConfig(
                max_new_tokens=spec.max_reasoning_tokens,
                greedy=spec.greedy,
                temperature=spec.temperature,
                top_p=spec.top_p,
            ),
            num_samples=spec.num_samples,
            flow_steps=spec.flow_steps,
        )
        self._prompt_cache: dict[bytes, torch.Tensor] = {}
        self._fast: FastRollout | None = None
        if spec.fast_path != "off":
            if model.device.type != "cuda":
                raise ValueError(f"fast_path {spec.fast_path!r} needs a CUDA device (model is on {model.device})")
            self._fast = FastRollout(model, self.tokens, FastOptions(fp8_decode=spec.fast_path == "fp8"))

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _images(self, sample: ModelInput) -> tuple[torch.Tensor, torch.Tensor]:
        rows, grids = [], []
        for cam in self._info.cameras:
            frames = sample.images.get(cam)
            if frames is None:
                raise ValueError(f"missing camera {cam!r} (have {', '.join(sorted(sample.images))})")
            arr = np.asarray(frames)
            expected_t = len(self._info.frame_offsets_sec)
            if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] != expected_t or arr.shape[3] != 3:
                raise ValueError(f"camera {cam!r}: expected ({expected_t}, H, W, 3) uint8, got {arr.shape} {arr.dtype}")
            chw = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
            out = preprocess_images(chw, self.image_cfg)
            rows.append(out.pixel_values)
            grids.append(out.image_grid_thw)
        return torch.cat(rows), torch.cat(grids)

    def _history(self, sample: ModelInput) -> tuple[torch.Tensor, torch.Tensor]:
        xyz = np.asarray(sample.ego_history.xyz, dtype=np.float32)
        rot = np.asarray(sample.ego_history.rotation, dtype=np.float32)
        if xyz.shape != (HISTORY_STEPS, 3) or rot.shape != (HISTORY_STEPS, 3, 3):
            raise ValueError(
                f"ego history must be ({HISTORY_STEPS}, 3) / ({HISTORY_STEPS}, 3, 3), got {xyz.shape} / {rot.shape}"
            )
        if not (np.isfinite(xyz).all() and np.isfinite(rot).all()):
            raise ValueError("ego history contains non-finite values")
        return torch.from_numpy(xyz)[None], torch.from_numpy(rot)[None]

    def predict(self, sample: ModelInput) -> Prediction:
        model = self.model
        if model is None:
            raise RuntimeError("model was closed")
        start = time.perf_counter()
        pixel_values, grids = self._images(sample)
        key = grids.numpy().tobytes()
        ids = self._prompt_cache.get(key)
        if ids is None:
            ids = prompt_ids(self.tokenizer, grids, self.image_cfg.merge_size, model.cfg.tokens_per_history_traj)
            self._prompt_cache[key] = ids
        hist_xyz, hist_rot = self._history(sample)
        preprocess_ms = (time.perf_counter() - start) * 1000.0
        generator = torch.Generator(device=model.device)
        generator.manual_seed(per_call_seed(self.spec.seed, sample.t0_ns))
        inputs = RolloutInputs(ids, pixel_values, grids, hist_xyz, hist_rot)
        if self._fast is not None:
            result = self._fast(inputs, self.settings, generator=generator)
        else:
            result = run_rollout(model, inputs, self.settings, self.tokens, generator=generator)
        reasoning = []
        for row in result.reasoning.tokens.tolist():
            reasoning.append(reasoning_from_ids(self.tokenizer, row).text)
        ms = result.timings_ms
        num_tokens = result.reasoning.num_tokens.tolist()
        logprobs = result.reasoning.token_logprobs
        token_logprobs = None
        if logprobs is not None:  # one device-to-host copy for all rows
            rows = logprobs.double().cpu().numpy()
            token_logprobs = tuple(row[:n] for row, n in zip(rows, num_tokens, strict=True))
        total_ms = (time.perf_counter() - start) * 1000.0
        return Prediction(
            xyz=result.pred_xyz[0].cpu().numpy(),
            rotation=result.pred_rot[0].cpu().numpy(),
            reasoning=tuple(reasoning),
            num_generated_tokens=tuple(int(v) for v in num_tokens),
            token_logprobs=token_logprobs,
            truncated=tuple(bool(v) for v in result.reasoning.truncated.tolist()),
            timings=StageTimings(
                preprocess_ms=preprocess_ms + ms.get("preprocess", 0.0),
                vision_ms=ms.get("vision", 0.0),
                reasoning_ms=ms.get("prefill", 0.0) + ms.get("decode", 0.0),
                action_ms=ms.get("action", 0.0),
                total_ms=total_ms,
            ),
        )

    def close(self) -> None:
        cuda = self.model is not None and self.model.device.type == "cuda"
        self.model = None
        self._fast = None
        self._prompt_cache.clear()
        if cuda:
            torch.cuda.empty_cache()


def load_torch_model(spec: ModelSpec, progress: Callable[[str], None] | None = None) -> AlpamayoDrivingModel:
    """Build or load the model a spec names; logs progress and provenance (also to ``progress`` when given,
    e.g. the node's ROS logger during the lifecycle configure step).

    Raises:
        ValueError: bad device/dtype/preset; CheckpointError / ConfigError / TokenizerError from the loader.
    """
    spec.validate()

    def say(message: str) -> None:
        logger.info(message)
        if progress is not None:
            progress(message)

    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    name = resolve_model_path(spec.model_path)
    if spec.model_path == "default" and name != "tiny":
        logger.warning(
            "model_path 'default' is the small driver trained on synthetic scenarios only: a demo, not a driver for "
            "a real vehicle; set model.model_path to an Alpamayo-R1 checkpoint directory"
        )
    if device.type == "cpu" and spec.cpu_threads > 0:
        torch.set_num_threads(spec.cpu_threads)  # process-wide: this process exists to run the model
        say(f"CPU inference with {spec.cpu_threads} intra-op thread(s)")
    started = time.perf_counter()
    cameras, offsets = ALPAMAYO_R1_CAMERAS, ALPAMAYO_R1_FRAME_OFFSETS_SEC
    tokenizer_dir: Path | None = None
    if spec.tokenizer_path:
        # a tokenizer_path without tokenizer.json may still hold the base VLM's config.json (used by the loader)
        user_dir = Path(spec.tokenizer_path).expanduser()
        tokenizer_dir = user_dir if (user_dir / "tokenizer.json").is_file() else None
    if name in PRESETS:
        say(f"building preset {name!r} (random weights, UNTRAINED) on {device} as {dtype}, seed {spec.seed}")
        model = build_preset(name, seed=spec.seed, dtype=dtype, device=device)
        version, untrained, model_name = f"preset-{name}-seed{spec.seed}", True, f"alpamayo-r1-{name}"
    else:
        path = Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"model_path {spec.model_path!r} is neither a checkpoint directory (with config.json) nor one of "
                f"{', '.join(('default', *PRESETS))}"
            )
        raw: dict[str, Any] = json.loads((path / "config.json").read_text())
        cameras, offsets = rig_from_config(raw)
        if tokenizer_dir is None:
            tokenizer_dir = _checkpoint_tokenizer_dir(path, raw)
        say(f"loading checkpoint {path} on {device} as {dtype}")
        vlm_dir = spec.tokenizer_path or (str(tokenizer_dir) if tokenizer_dir else None)
        model, report = load_checkpoint(path, device, dtype, vlm_dir=vlm_dir, progress=say)
        say(
            f"loaded {report.num_tensors} tensors ({report.num_values / 1e9:.4f} B values) from "
            f"{', '.join(report.files)} in {report.seconds:.1f} s, fingerprint {report.fingerprint}, "
            f"VLM architecture from {model.cfg.vlm_source}"
        )
        version, untrained = report.fingerprint, False
        model_name = str(raw.get("model_name", "alpamayo-r1"))
    source = f"{tokenizer_dir}/tokenizer.json" if tokenizer_dir else "Qwen3-VL built offline from qwen.tiktoken"
    say(f"tokenizer: {source}; cameras: {', '.join(cameras)}; frame offsets {list(offsets)} s")
    tokenizer = load_tokenizer(str(tokenizer_dir) if tokenizer_dir else None, model.cfg.traj_vocab_size)
    check_against_config(tokenizer, model.cfg.vocab_size, model.cfg.traj_token_start_idx, model.cfg.traj_token_ids)
    info = ModelInfo(
        name=model_name,
        version=version,
        cameras=cameras,
        frame_offsets_sec=offsets,
        image_size_hw=None,
        untrained=untrained,
    )
    say(f"model ready in {time.perf_counter() - started:.1f} s (attention sdpa, untrained={untrained})")
    return AlpamayoDrivingModel(model, tokenizer, spec, info)
