"""3-axis mRoPE position ids for a prompt of text and image tokens (Qwen3-VL rule, images only).

Text tokens advance all three axes by one; an image of llm grid (t, h, w) = (grid_t, grid_h/merge, grid_w/merge)
gets positions start + (t_idx, h_idx, w_idx) and the next text token starts at start + max(t, h, w). The per-row
``rope_delta`` = max position + 1 - length is what decode steps (and the expert) add to the cache length. Computed
on the host from the ids: the prompt layout is known, so no device syncs are needed here later.
"""

from __future__ import annotations

import numpy as np
import torch


def mrope_position_ids(
    input_ids: torch.Tensor, image_grid_thw: torch.Tensor, image_token_id: int, merge_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) ids and (num_images, 3) grids (row-major over the batch) -> positions (3, B, L), deltas (B, 1).

    Raises:
        ValueError: the image-token runs do not match the grids.
    """
    ids = input_ids.detach().cpu().numpy()
    grids = image_grid_thw.detach().cpu().numpy().astype(np.int64)
    batch, length = ids.shape
    positions = np.zeros((3, batch, length), dtype=np.int64)
    deltas = np.zeros((batch, 1), dtype=np.int64)
    image_index = 0
    for row in range(batch):
        is_image = ids[row] == image_token_id
        pos = 0
        i = 0
        while i < length:
            if not is_image[i]:
                j = i
                while j < length and not is_image[j]:
                    j += 1
                positions[:, row, i:j] = np.arange(pos, pos + (j - i))
                pos += j - i
                i = j
                continue
            if image_index >= len(grids):
                raise ValueError(f"more image-token runs than the {len(grids)} image grids")
            t, h, w = (
                int(grids[image_index][0]),
                int(grids[image_index][1]) // merge_size,
                int(grids[image_index][2]) // merge_size,
            )
            image_index += 1
            count = t * h * w
            if i + count > length or not is_image[i : i + count].all():
                raise ValueError(f"image {image_index - 1} needs {count} consecutive image tokens at {i}")
            tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
            positions[0, row, i : i + count] = pos + tt.reshape(-1)
            positions[1, row, i : i + count] = pos + hh.reshape(-1)
            positions[2, row, i : i + count] = pos + ww.reshape(-1)
            pos += max(t, h, w)
            i += count
        deltas[row, 0] = pos - length  # = max position + 1 - length
    if image_index != len(grids):
        raise ValueError(f"{len(grids)} image grids but {image_index} image-token runs")
    device = input_ids.device
    return torch.from_numpy(positions).to(device), torch.from_numpy(deltas).to(device)
