"""Samples -> TrainBatch with the inference-side functions (prompt ids, processor, history tokens, mRoPE).

Using ``processor.prompt_ids`` / ``preprocess_images`` / ``history.history_token_ids`` / ``rope.mrope_position_ids``
here is what guarantees the model sees at training time exactly the token layout the rollout builds at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

from alpamayo_ros.model.action_space import UnicycleAccelCurvatureActionSpace, yaw_rotation
from alpamayo_ros.model.config import AlpamayoConfig
from alpamayo_ros.model.history import fuse_history, history_token_ids
from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids
from alpamayo_ros.model.rope import mrope_position_ids
from alpamayo_ros.model.tokenizer import special_token
from alpamayo_ros.training.data import RAW_ACTION_SPACE, SampleSet
from alpamayo_ros.training.objective import IGNORE, TrainBatch


@dataclass(frozen=True)
class Collator:
    tokenizer: Tokenizer
    cfg: AlpamayoConfig
    image_cfg: ImageProcessorConfig
    accel_mean: float
    accel_std: float
    curvature_mean: float
    curvature_std: float

    @classmethod
    def for_config(cls, tokenizer: Tokenizer, cfg: AlpamayoConfig) -> Collator:
        vision = cfg.vlm["vision_config"]
        image_cfg = ImageProcessorConfig(
            patch_size=int(vision["patch_size"]),
            temporal_patch_size=int(vision["temporal_patch_size"]),
            merge_size=int(vision["spatial_merge_size"]),
            min_pixels=cfg.min_pixels,
            max_pixels=cfg.max_pixels,
        )
        a = cfg.action_space
        return cls(tokenizer, cfg, image_cfg, a.accel_mean, a.accel_std, a.curvature_mean, a.curvature_std)

    @property
    def future_start_id(self) -> int:
        return self._id("traj_future_start")

    def _id(self, name: str) -> int:
        token = self.tokenizer.token_to_id(special_token(name))
        if token is None:
            raise ValueError(f"tokenizer has no {special_token(name)}")
        return int(token)

    def reasoning_ids(self, text: str) -> list[int]:
        """Generated part: CoC tokens, ``<|cot_end|>``, ``<|traj_future_start|>`` (what the rollout decodes)."""
        return [*self.tokenizer.encode(text, add_special_tokens=False).ids, self._id("cot_end"), self.future_start_id]

    def __call__(self, data: SampleSet, index: np.ndarray, drop_history: np.ndarray | None = None) -> TrainBatch:
        """``drop_history`` (B,) bool: those samples get ``constant_velocity_history`` instead of their own."""
        imgs = data.images[index]  # (B, cams, T, h, w, 3)
        b = imgs.shape[0]
        chw = torch.from_numpy(np.ascontiguousarray(imgs.reshape(-1, *imgs.shape[-3:]))).permute(0, 3, 1, 2)
        processed = preprocess_images(chw, self.image_cfg)
        per_sample = imgs.shape[1] * imgs.shape[2]
        grids_one = processed.image_grid_thw[:per_sample]
        prompt = prompt_ids(self.tokenizer, grids_one, self.image_cfg.merge_size, self.cfg.tokens_per_history_traj)[0]
        hist_xyz = data.hist_xyz[index]
        if drop_history is not None and drop_history.any():
            hist_xyz = np.where(
                drop_history[:, None, None], constant_velocity_history(hist_xyz, data.hist_yaw[index]), hist_xyz
            )
        hist = torch.from_numpy(np.ascontiguousarray(hist_xyz, dtype=np.float32))
        hist_ids = history_token_ids(hist, self.cfg.hist_tokenizer, self.cfg.hist_token_start_idx)
        reasons = [self.reasoning_ids(data.texts[i]) for i in index]
        length = prompt.shape[0] + max(len(r) for r in reasons)
        pad = int(self.tokenizer.token_to_id("<|endoftext|>") or 0)
        ids = torch.full((b, length), pad, dtype=torch.int64)
        labels = torch.full((b, length), IGNORE, dtype=torch.int64)
        p = prompt.shape[0]
        for row, r in enumerate(reasons):
            ids[row, :p] = prompt
            ids[row, p : p + len(r)] = torch.tensor(r)
            labels[row, p - 1 : p - 1 + len(r)] = torch.tensor(r)  # position j predicts token j + 1
        placeholder = self._id("traj_history")
        fused = fuse_history(ids, hist_ids, placeholder)
        merge = self.image_cfg.merge_size
        position_ids, deltas = mrope_position_ids(
            fused, processed.image_grid_thw, int(self.cfg.vlm["image_token_id"]), merge
        )
        act = torch.from_numpy(data.actions[index]).float()
        norm = torch.stack(
            [
                (act[..., 0] - self.accel_mean) / self.accel_std,
                (act[..., 1] - self.curvature_mean) / self.curvature_std,
            ],
            dim=-1,
        )
        return TrainBatch(
            input_ids=fused,
            labels=labels,
            position_ids=position_ids,
            rope_deltas=deltas,
            pixel_values=processed.pixel_values,
            image_grid_thw=processed.image_grid_thw,
            actions=norm,
        )


def history_rotation(yaw: np.ndarray) -> torch.Tensor:
    """(..., 16) yaw -> (..., 16, 3, 3) rotations, as the node's ego history carries them."""
    return yaw_rotation(torch.from_numpy(yaw).float())


def constant_velocity_history(hist_xyz: np.ndarray, hist_yaw: np.ndarray) -> np.ndarray:
    """(B, 16, 3) straight histories at each sample's own t0 speed: no braking, speeding up or turning to read.

    Training on some of these (``alpamayo-ros train --history-dropout``) stops the reasoning from being read off
    the ego's past motion alone (the ego-status shortcut of open-loop driving models), which left the scene in the
    cameras unused. The speed is the action space's own t0 estimate, so the action targets (relative to it) hold.
    """
    space = UnicycleAccelCurvatureActionSpace(RAW_ACTION_SPACE).double()
    v0 = space.estimate_t0_speed(torch.from_numpy(hist_xyz).double(), yaw_rotation(torch.from_numpy(hist_yaw).double()))
    steps = hist_xyz.shape[-2]
    t = (np.arange(steps) - (steps - 1)) * RAW_ACTION_SPACE.dt  # ..., -0.1, 0.0
    out = np.zeros_like(hist_xyz)
    out[..., 0] = v0.numpy()[:, None] * t
    out[..., 2] = hist_xyz[..., -1:, 2]
    return out
