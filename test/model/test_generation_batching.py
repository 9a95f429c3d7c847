"""Decode-loop rules on synthetic logits, and checkpoint-B-like paths on the tiny preset.

Checkpoint B (held back) runs 2 inputs x 2 samples where one input emits ``<|traj_future_start|>`` early and the
other never does; here the same paths are forced through the logits hook, and the batched result is checked
against per-input runs (the expert mask must make the extra cache columns invisible).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alpamayo_ros.model.generation import DecodeTokens, SamplingConfig, decode_reasoning, select_next
from alpamayo_ros.model.rollout import RolloutInputs, RolloutSettings, replace_after_marker, run_rollout

V = 155697
MARKER, PAD, IM_END = 155681, 151643, 151645
TOKENS = DecodeTokens(
    traj_start=151669, traj_vocab_size=4000, future_start=MARKER, pad=PAD, eos=(IM_END, PAD), history_placeholder=155684
)


def _scripted(schedule: list[list[int]]):  # type: ignore[no-untyped-def]
    """Logits that make row r pick schedule[r][step] greedily; returns (first_logits, step_fn, fed tokens)."""
    fed: list[torch.Tensor] = []

    def logits_for(step: int) -> torch.Tensor:
        out = torch.zeros(len(schedule), V)
        for row, seq in enumerate(schedule):
            out[row, seq[min(step, len(seq) - 1)]] = 5.0
        return out

    def step(token: torch.Tensor) -> torch.Tensor:
        fed.append(token.clone())
        return logits_for(len(fed))

    return logits_for(0), step, fed


def test_stops_one_token_after_every_row_has_the_marker() -> None:
    first, step, fed = _scripted([[11, MARKER, 12, 13, 14, 15], [21, 22, 23, MARKER, 24, 25]])
    out = decode_reasoning(step, first, SamplingConfig(max_new_tokens=20, greedy=True), TOKENS)
    assert out.tokens.tolist() == [[11, MARKER, 12, 13, 14], [21, 22, 23, MARKER, 24]]
    assert len(fed) == 4  # the last token is never fed: cache = sequence - 1
    assert out.found_future_start.tolist() == [True, True] and out.truncated.tolist() == [False, False]
    assert out.num_tokens.tolist() == [2, 4]
    assert replace_after_marker(out.tokens, MARKER, PAD).tolist() == [
        [11, MARKER, PAD, PAD, PAD],
        [21, 22, 23, MARKER, PAD],
    ]


def test_row_without_marker_runs_to_the_budget_and_is_truncated() -> None:
    first, step, _ = _scripted([[11, MARKER, 12], [21, 22, 23]])
    out = decode_reasoning(step, first, SamplingConfig(max_new_tokens=6, greedy=True), TOKENS)
    assert out.tokens.shape == (2, 6)
    assert out.found_future_start.tolist() == [True, False]
    assert out.truncated.tolist() == [False, True]
    assert out.num_tokens.tolist() == [2, 6]


def test_eos_finishes_a_row_and_pads_it() -> None:
    first, step, _ = _scripted([[11, IM_END, 12, 13], [21, 22, 23, IM_END]])
    out = decode_reasoning(step, first, SamplingConfig(max_new_tokens=10, greedy=True), TOKENS)
    assert out.tokens.tolist() == [[11, IM_END, PAD, PAD], [21, 22, 23, IM_END]]
    assert out.finished_eos.tolist() == [True, True] and out.truncated.tolist() == [False, False]


def test_each_token_keeps_its_probability_under_the_masked_distribution_and_pad_keeps_zero() -> None:
    first, step, _ = _scripted([[11, IM_END, 12, 13], [21, 22, 23, IM_END]])
    out = decode_reasoning(step, first, SamplingConfig(max_new_tokens=10, greedy=True), TOKENS)
    assert out.token_logprobs is not None and out.token_logprobs.shape == out.tokens.shape
    # a scripted row: one logit at 5, the other V - 1 at 0, of which the 4000 trajectory tokens are masked out
    expected = 5.0 - np.log(np.exp(5.0) + (V - 1 - TOKENS.traj_vocab_size))
    got = out.token_logprobs.numpy()
    assert np.allclose(got[1], expected, atol=5e-4)  # float32 sum over 155k logits
    assert np.allclose(got[0, :2], expected, atol=5e-4) and (got[0, 2:] == 0.0).all()  # pad after the eos


def test_trajectory_tokens_are_never_generated() -> None:
    first, step, _ = _scripted([[151700, 151700], [155000, 155000]])
    first[:, 42] = 1.0  # second best outside the trajectory range
    out = decode_reasoning(step, first, SamplingConfig(max_new_tokens=1, greedy=True), TOKENS)
    assert out.tokens.tolist() == [[42], [42]]


def test_top_p_sampling_is_seedable_and_keeps_the_nucleus() -> None:
    logits = torch.full((3, 50), -10.0)
    logits[:, 7] = 10.0  # p ~ 1: the nucleus at top_p 0.98 is this one token
    cfg = SamplingConfig(temperature=0.6, top_p=0.98)
    assert select_next(logits, cfg, torch.Generator().manual_seed(1)).tolist() == [7, 7, 7]
    flat = torch.zeros(4, 1000)
    a = select_next(flat, cfg, torch.Generator().manual_seed(5))
    b = select_next(flat, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    two = torch.full((1, 10), -30.0)
    two[0, 3], two[0, 4] = 0.0, 0.0
    picks = {int(select_next(two, SamplingConfig(top_p=0.98), torch.Generator().manual_seed(s))[0]) for s in range(20)}
    assert picks == {3, 4}
    two[0, 4] = -0.5  # top_k keeps ties (as HF's TopKLogitsWarper does), so break the tie first
    assert {int(select_next(two, SamplingConfig(top_k=1), torch.Generator().manual_seed(s))[0]) for s in range(10)} == {
        3
    }


# -- checkpoint-B-like batch on the tiny preset ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    from alpamayo_ros.model.presets import build_preset

    return build_preset("tiny", seed=3)


def _inputs(tokenizer, variants: list[int]) -> RolloutInputs:  # type: ignore[no-untyped-def]
    from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids

    pixels, grids, ids, xyz, rot = [], [], [], [], []
    for v in variants:
        gen = torch.Generator().manual_seed(100 + v)
        images = torch.randint(0, 256, (16, 3, 320, 576), generator=gen, dtype=torch.uint8)
        p = preprocess_images(images, ImageProcessorConfig())
        pixels.append(p.pixel_values)
        grids.append(p.image_grid_thw)
        ids.append(prompt_ids(tokenizer, p.image_grid_thw, 2))
        t = torch.arange(-15, 1, dtype=torch.float32) * 0.1
        speed = 6.0 + 6.0 * v
        xyz.append(torch.stack([speed * t, 0.3 * v * t, 0.0 * t], dim=-1))
        rot.append(torch.eye(3).expand(16, 3, 3))
    return RolloutInputs(torch.cat(ids), torch.cat(pixels), torch.cat(grids), torch.stack(xyz), torch.stack(rot))


def _force_marker(rows: list[int], at_step: int):  # type: ignore[no-untyped-def]
    def hook(step: int, logits: torch.Tensor) -> None:
        if step == at_step:
            logits[rows, MARKER] = 1e4

    return hook


@pytest.mark.slow  # 3-7 s on the shared 2-core machine
def test_batch_with_early_and_missing_marker_matches_single_runs(tiny, tokenizer) -> None:  # type: ignore[no-untyped-def]
    settings = RolloutSettings(SamplingConfig(max_new_tokens=8, greedy=True), num_samples=2)
    noise = torch.randn(4, 64, 2, generator=torch.Generator().manual_seed(8642))
    batch = run_rollout(
        tiny,
        _inputs(tokenizer, [0, 1]),
        settings,
        TOKENS,
        noise=noise,
        keep_intermediates=True,
        on_logits=_force_marker([0, 1], 3),
    )
    r = batch.reasoning
    assert r.tokens.shape == (4, 8)  # input 1 never emits the marker: the budget ends the decode
    assert r.found_future_start.tolist() == [True, True, False, False]
    assert r.truncated.tolist() == [False, False, True, True]
    prompt = batch.prompt_len
    ctx = batch.expert_context
    assert ctx.prefix_len == prompt + 8 - 1
    assert ctx.offsets.tolist() == [prompt + 4, prompt + 4, prompt + 8, prompt + 8]
    hidden = ctx.attention_mask[:, 0, 0] < 0
    assert hidden[0].nonzero().squeeze(1).tolist() == list(range(prompt + 4, prompt + 7))
    assert not bool(hidden[2].any())  # no marker: nothing hidden (offset = full length > cache length)
    deltas = batch.rope_deltas.repeat_interleave(2, dim=0)
    assert torch.equal(ctx.position_ids[0, :, 0], deltas[:, 0] + ctx.offsets)
    assert torch.equal(ctx.position_ids[0], ctx.position_ids[2])  # identical on all 3 rope axes
    assert (batch.sequences[:2, prompt + 4 :] == PAD).all()  # padded after the marker

    single0 = run_rollout(
        tiny, _inputs(tokenizer, [0]), settings, TOKENS, noise=noise[:2], on_logits=_force_marker([0, 1], 3)
    )
    assert single0.reasoning.tokens.shape == (2, 5)  # alone, input 0 stops one token after its marker
    single1 = run_rollout(tiny, _inputs(tokenizer, [1]), settings, TOKENS, noise=noise[2:])
    assert torch.equal(single1.reasoning.tokens, r.tokens[2:])
    assert torch.equal(single0.reasoning.tokens[:, :4], r.tokens[:2, :4])
    # the extra cache columns (tokens generated after input 0's marker) are masked out; only batching noise remains
    np.testing.assert_allclose(batch.pred_xyz[0].numpy(), single0.pred_xyz[0].numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(batch.pred_xyz[1].numpy(), single1.pred_xyz[0].numpy(), rtol=0, atol=1e-4)
    assert not np.allclose(batch.pred_xyz[0, 0].numpy(), batch.pred_xyz[0, 1].numpy())  # samples differ (noise)
