"""History tokens, fusion into the placeholders, and 3-axis mRoPE positions vs the official goldens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alpamayo_ros.model.config import DeltaTokenizerConfig, DiscreteTokenizerConfig
from alpamayo_ros.model.history import encode_future_bins, encode_history_bins, fuse_history, history_token_ids
from alpamayo_ros.model.rope import mrope_position_ids


def test_history_tokens_and_fusion(goldens_a) -> None:  # type: ignore[no-untyped-def]
    xyz = torch.from_numpy(goldens_a.inputs["ego_history_xyz"][:, 0])
    cfg = DeltaTokenizerConfig()
    np.testing.assert_array_equal(
        encode_history_bins(xyz, cfg).numpy(), goldens_a.action_space["hist_traj_tokens_0based"]
    )
    hist = history_token_ids(xyz, cfg, 154669)
    np.testing.assert_array_equal(hist.numpy(), goldens_a.prefill["hist_token_ids"])
    fused = fuse_history(torch.from_numpy(goldens_a.processor["input_ids"]), hist, 155684)
    np.testing.assert_array_equal(fused.numpy(), goldens_a.prefill["fused_input_ids"])


def test_first_triple_is_the_clamped_absolute_offset() -> None:
    xyz = torch.zeros(1, 16, 3)
    xyz[0, :, 0] = torch.linspace(-15.0, 0.0, 16)
    bins = encode_history_bins(xyz, DeltaTokenizerConfig()).reshape(16, 3)
    assert bins[0].tolist() == [0, 500, 500]  # x = -15 m clamps to bin 0; y, z = 0 -> middle bin (round(499.5))
    assert bins[1:, 0].tolist() == [round((1.0 + 4) / 8 * 999)] * 15


def test_fusion_needs_one_placeholder_per_token() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        fuse_history(torch.tensor([[1, 7, 7, 2]]), torch.tensor([[5, 6, 8]]), 7)


def test_rope_positions_and_deltas(goldens_a) -> None:  # type: ignore[no-untyped-def]
    positions, deltas = mrope_position_ids(
        torch.from_numpy(goldens_a.prefill["fused_input_ids"]),
        torch.from_numpy(goldens_a.processor["image_grid_thw"]),
        151655,
        2,
    )
    np.testing.assert_array_equal(positions.numpy(), goldens_a.prefill["position_ids"])
    np.testing.assert_array_equal(deltas.numpy(), goldens_a.prefill["rope_deltas"])
    assert int(deltas[0, 0]) == -2592


def test_rope_rejects_grid_mismatch() -> None:
    ids = torch.tensor([[1, 9, 9, 9, 9, 2]])
    with pytest.raises(ValueError, match="grids"):
        mrope_position_ids(ids, torch.tensor([[1, 4, 4], [1, 4, 4]]), 9, 2)


def test_future_tokens(goldens_a) -> None:  # type: ignore[no-untyped-def]
    for suffix in ("f32", "f64"):
        action = torch.from_numpy(goldens_a.action_space[f"future_action_normalized_{suffix}"])
        bins = encode_future_bins(action, DiscreteTokenizerConfig())
        np.testing.assert_array_equal(bins.numpy(), goldens_a.action_space["future_traj_tokens_0based"])
