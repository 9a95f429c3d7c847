"""Images and prompt -> model inputs, reproducing the official Qwen3-VL processor + Alpamayo chat message.

No torchvision (it cannot be installed next to this torch), so the Qwen2-VL image processing is written here:
smart-resize to a multiple of patch*merge within [min_pixels, max_pixels], bicubic (antialiased) resize when the
size changes, rescale/normalise with mean = std = 0.5, and patchify into rows of 3*2*16*16 values in the merge-block
order the vision tower expects, the single frame duplicated over the temporal patch of 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

SYSTEM_PROMPT = "You are a driving assistant that generates safe and accurate actions."
USER_INSTRUCTION = "output the chain-of-thought reasoning of the driving process, then output the future trajectory."


@dataclass(frozen=True)
class ImageProcessorConfig:
    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 163840
    max_pixels: int = 196608
    image_mean: float = 0.5
    image_std: float = 0.5


@dataclass(frozen=True)
class ProcessedImages:
    pixel_values: torch.Tensor  # (sum of grid_t*grid_h*grid_w, 3*T*P*P) float32
    image_grid_thw: torch.Tensor  # (num_images, 3) int64


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's size rule: nearest multiple of ``factor``, rescaled (keeping aspect) into the pixel budget."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {height}x{width} exceeds 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def target_size(height: int, width: int, cfg: ImageProcessorConfig) -> tuple[int, int]:
    return smart_resize(height, width, cfg.patch_size * cfg.merge_size, cfg.min_pixels, cfg.max_pixels)


def _resize_uint8(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic antialiased resize of (N, 3, H, W) uint8 -> float values 0..255.

    On CPU this is torch's native uint8 kernel, the one torchvision (hence the official fast processor) uses for
    bicubic on CPU; elsewhere float math rounded back to uint8, as torchvision does there (can differ by 1 level).
    """
    if images.device.type == "cpu":
        out = F.interpolate(images.contiguous(), size=size, mode="bicubic", antialias=True, align_corners=False)
        return out.float()
    out = F.interpolate(images.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0, 255).round_()


def patchify(images: torch.Tensor, cfg: ImageProcessorConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) normalised float images -> pixel rows (N*gh*gw, 3*T*P*P) and grid_thw (N, 3)."""
    n, c, h, w = images.shape
    p, m, tp = cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size
    gh, gw = h // p, w // p
    frames = images.unsqueeze(1).expand(n, tp, c, h, w)  # one frame repeated over the temporal patch
    x = frames.reshape(n, 1, tp, c, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)  # n, t, bh, bw, mh, mw, c, tp, ph, pw
    rows = x.reshape(n * gh * gw, c * tp * p * p)
    grid = torch.tensor([[1, gh, gw]] * n, dtype=torch.int64)
    return rows.contiguous(), grid


def preprocess_images(images: torch.Tensor | np.ndarray, cfg: ImageProcessorConfig) -> ProcessedImages:
    """(N, 3, H, W) uint8 RGB (channels first), all the same size -> pixel_values and image_grid_thw.

    Normalisation is ``(u / 255 - mean) / std``; the official fast processor fuses it differently, which differs by
    at most one float32 ulp (fixture tolerance 1e-6).
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) uint8 images, got {tuple(x.shape)} {x.dtype}")
    h, w = int(x.shape[2]), int(x.shape[3])
    th, tw = target_size(h, w, cfg)
    xf = x.float() if (th, tw) == (h, w) else _resize_uint8(x, (th, tw))
    xf = (xf / 255.0 - cfg.image_mean) / cfg.image_std
    rows, grid = patchify(xf, cfg)
    return ProcessedImages(pixel_values=rows, image_grid_thw=grid)


def prompt_text(num_images: int, num_history_tokens: int = 48) -> str:
    """The chat-template text the official code produces (Qwen3-VL template, continue_final_message=True).

    system turn, user turn = one ``<|vision_start|><|image_pad|><|vision_end|>`` per image, the history
    placeholders, the instruction; the assistant turn is pre-filled with ``<|cot_start|>`` and left open.
    """
    images = "<|vision_start|><|image_pad|><|vision_end|>" * num_images
    history = "<|traj_history_start|>" + "<|traj_history|>" * num_history_tokens + "<|traj_history_end|>"
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{images}{history}{USER_INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n<|cot_start|>"
    )


def expand_image_pads(text: str, image_grid_thw: torch.Tensor, merge_size: int) -> str:
    """Replace each ``<|image_pad|>`` with one pad per merged visual token (grid_t*grid_h*grid_w / merge^2)."""
    pieces = text.split("<|image_pad|>")
    if len(pieces) - 1 != int(image_grid_thw.shape[0]):
        raise ValueError(f"{len(pieces) - 1} image placeholders for {image_grid_thw.shape[0]} images")
    out = [pieces[0]]
    for grid, piece in zip(image_grid_thw.tolist(), pieces[1:], strict=True):
        out.append("<|image_pad|>" * (grid[0] * grid[1] * grid[2] // merge_size**2))
        out.append(piece)
    return "".join(out)


def prompt_ids(
    tokenizer: Tokenizer, image_grid_thw: torch.Tensor, merge_size: int, num_history_tokens: int = 48
) -> torch.Tensor:
    """Token ids (1, L) of the prompt for images of the given grids."""
    text = expand_image_pads(prompt_text(int(image_grid_thw.shape[0]), num_history_tokens), image_grid_thw, merge_size)
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    return torch.tensor([ids], dtype=torch.int64)
