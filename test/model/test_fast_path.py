"""The fast path (static KV cache, graphed decode step and flow loop) against the eager rollout, on CPU in float32.

On the CPU the step functions run without graph capture (capture is a thin layer over the same functions), so
these tests check the math: GQA over the static cache, precomputed mRoPE tables, the in-graph sampling state and
stop rule, the expert over the shared buffer with its column mask. Tolerances (float32, only the order of
reductions differs from transformers' SDPA path): logits atol 1e-4 (README: prefill logits atol 1e-4 at |logit|
<= 5), actions atol 1e-5 (normalised units ~1), waypoints atol 1e-4 m / rotations 1e-5 (README's pred_xyz/pred_rot
tolerances); greedy tokens exact (official_tiny_a's smallest greedy margin is 0.062).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from alpamayo_ros.model.fast import FastOptions, FastRollout
from alpamayo_ros.model.fast.decode_graph import trim_reasoning
from alpamayo_ros.model.fast.expert_graph import StaticFlow
from alpamayo_ros.model.fast.fp8 import Fp8Linear
from alpamayo_ros.model.fast.static_cache import StaticKV, layer_linears
from alpamayo_ros.model.flow_matching import euler_sample
from alpamayo_ros.model.generation import SamplingConfig, decode_reasoning
from alpamayo_ros.model.rollout import RolloutSettings, run_rollout

ATOL_LOGITS = 1e-4
ATOL_HIDDEN = 1e-4  # KV cache: README atol 1e-4
ATOL_VISION = 1e-5  # float32, same op order per image (measured 0)
ATOL_ACTION = 1e-5
ATOL_XYZ = 1e-4
ATOL_ROT = 1e-5


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


@pytest.fixture(scope="module")
def fast_greedy_a(model_a, rollout_inputs_a, decode_tokens, goldens_a):  # type: ignore[no-untyped-def]
    fast = FastRollout(model_a, decode_tokens, share_weights=False)
    fast.check_every = 5
    settings = RolloutSettings(SamplingConfig(max_new_tokens=24, greedy=True), num_samples=1)
    noise = torch.from_numpy(goldens_a.expert["initial_noise"])
    return fast, fast(rollout_inputs_a, settings, noise=noise, keep_intermediates=True)


def test_greedy_rollout_matches_eager_and_goldens(fast_greedy_a, greedy_rollout_a, goldens_a) -> None:  # type: ignore[no-untyped-def]
    fast, r = fast_greedy_a
    eager = greedy_rollout_a
    assert fast.info.decode_steps == 23  # 24 tokens, the last one is never fed
    # batched vision tower: the same ops per image as transformers' per-image SDPA loop
    np.testing.assert_allclose(_np(r.vision.image_embeds), _np(eager.vision.image_embeds), rtol=0, atol=ATOL_VISION)
    for got, ref_ds in zip(r.vision.deepstack, eager.vision.deepstack, strict=True):
        np.testing.assert_allclose(_np(got), _np(ref_ds), rtol=0, atol=ATOL_VISION)
    np.testing.assert_allclose(_np(r.prefill_logits), _np(eager.prefill_logits), rtol=0, atol=ATOL_LOGITS)
    # the static buffer holds the cache the expert sees (prompt from the prefill, reasoning from the decode steps)
    kv = fast._plan.kv
    for i in (0, len(kv.keys) - 1):
        ref_k, ref_v = goldens_a.kv[f"layer{i}_keys"], goldens_a.kv[f"layer{i}_values"]
        length = ref_k.shape[2]
        np.testing.assert_allclose(_np(kv.keys[i, :, :, :length]), ref_k, rtol=1e-4, atol=ATOL_HIDDEN)
        np.testing.assert_allclose(_np(kv.values[i, :, :, :length]), ref_v, rtol=1e-4, atol=ATOL_HIDDEN)
    np.testing.assert_array_equal(r.reasoning.tokens.numpy(), eager.reasoning.tokens.numpy())
    np.testing.assert_array_equal(r.sequences.numpy(), goldens_a.decode["sequences"])
    np.testing.assert_array_equal(r.reasoning.num_tokens.numpy(), eager.reasoning.num_tokens.numpy())
    assert bool(r.reasoning.truncated.all())
    # the decoder's last masked logits = the eager loop's last step (static cache + GQA + rope tables)
    last = fast._plan.decoder.logits
    ref = eager.step_logits[-1]
    finite = torch.isfinite(ref)
    assert torch.equal(finite, torch.isfinite(last))
    np.testing.assert_allclose(_np(last[finite]), _np(ref[finite]), rtol=0, atol=ATOL_LOGITS)
    np.testing.assert_allclose(_np(r.sampled_action), _np(eager.sampled_action), rtol=0, atol=ATOL_ACTION)
    np.testing.assert_allclose(_np(r.pred_xyz), _np(eager.pred_xyz), rtol=0, atol=ATOL_XYZ)
    np.testing.assert_allclose(_np(r.pred_rot), _np(eager.pred_rot), rtol=0, atol=ATOL_ROT)
    np.testing.assert_allclose(_np(r.pred_xyz[:, :, None]), goldens_a.expert["pred_xyz"], rtol=0, atol=ATOL_XYZ)


def test_expert_loop_with_marker_offset(model_a, greedy_rollout_a, decode_tokens) -> None:  # type: ignore[no-untyped-def]
    """The masked-tail case: a <|traj_future_start|> before the end hides the later cache columns; spare columns
    between the cache length and the capacity must stay invisible too."""
    eager = greedy_rollout_a
    cache = eager.expert_context.cache
    prefix_len = cache.get_seq_length()
    sequences = eager.sequences.clone()
    sequences[0, prefix_len - 6] = decode_tokens.future_start
    deltas = eager.rope_deltas
    noise = torch.randn(1, 64, 2, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ctx = model_a.expert_context(cache, sequences, deltas, decode_tokens.future_start)
        ref = euler_sample(lambda x, t: model_a.expert_step(ctx, x, t).velocity, noise, 10)
        kv = StaticKV.allocate(
            layers=len(cache.layers),
            rows=1,
            kv_heads=cache.layers[0].keys.shape[1],
            capacity=prefix_len + 3,
            n_action=64,
            head_dim=cache.layers[0].keys.shape[3],
            device=torch.device("cpu"),
            dtype=torch.float32,
        )
        kv.keys[:, :, :, prefix_len:] = 7.0  # garbage in the unused columns must not leak in
        kv.load_prefix([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers], 1)
        flow = StaticFlow(model_a, kv, [layer_linears(layer, False) for layer in model_a.expert.layers], 10)
        flow.prepare(ctx.offsets, prefix_len, deltas, noise)
        out = flow()
    assert int(ctx.offsets[0]) == prefix_len - 5
    np.testing.assert_allclose(_np(out), _np(ref), rtol=0, atol=ATOL_ACTION)


def test_trim_reproduces_the_eager_stop_rule(decode_tokens) -> None:  # type: ignore[no-untyped-def]
    """Scripted rows: marker then one more token; eos (pad afterwards); budget. Same tokens and flags as eager."""
    ids = decode_tokens
    marker, eos, pad = ids.future_start, ids.eos[0], ids.pad
    scripts = [
        [[5, 6, marker, 9, 10, 11, 12, 13], [5, marker, 7, 8, 9, 10, 11, 12]],  # both found: stop one after
        [[5, eos, 6, 7, 8, 9, 10, 11], [5, 6, 7, marker, 8, 9, 10, 11]],  # eos row gets pad; stop after marker + 1
        [[5, 6, 7, 8, 9, 10, 11, 12], [eos, 6, 7, 8, 9, 10, 11, 12]],  # budget
        [[eos, 6, 7, 8, 9, 10, 11, 12], [5, eos, 7, 8, 9, 10, 11, 12]],  # all finished
    ]
    vocab = 155697
    for script in scripts:
        table = torch.tensor(script)

        def logits_for(col: int, table: torch.Tensor = table) -> torch.Tensor:
            out = torch.zeros(2, vocab)
            out[torch.arange(2), table[:, col]] = 1.0
            return out

        counter = {"i": 0}

        def step(token: torch.Tensor, counter: dict[str, int] = counter, fn=logits_for) -> torch.Tensor:  # type: ignore[no-untyped-def]
            counter["i"] += 1
            return fn(counter["i"])

        ref = decode_reasoning(step, logits_for(0), SamplingConfig(max_new_tokens=8, greedy=True), ids)
        # what the graphed loop records: the same tokens with pad after a row's eos, run to the budget
        recorded = table.clone()
        for row in range(2):
            hits = (table[row] == eos).nonzero()
            if len(hits):
                recorded[row, int(hits[0]) + 1 :] = pad
        got = trim_reasoning(recorded, ids)
        np.testing.assert_array_equal(got.tokens.numpy(), ref.tokens.numpy())
        for name in ("found_future_start", "finished_eos", "num_tokens"):
            np.testing.assert_array_equal(getattr(got, name).numpy(), getattr(ref, name).numpy())


def test_two_samples_shared_weights_and_seeded_sampling(rollout_inputs_a, decode_tokens) -> None:  # type: ignore[no-untyped-def]
    """Tiny preset, 2 samples per input: greedy rows equal eager after the q/k/v and gate/up weights became views
    of fused tensors; sampled decoding is a pure function of the generator's seed."""
    from alpamayo_ros.model.presets import build_preset

    model = build_preset("tiny", seed=1)
    fast = FastRollout(model, decode_tokens, share_weights=True)
    fast.check_every = 2
    greedy = RolloutSettings(SamplingConfig(max_new_tokens=6, greedy=True), num_samples=2, flow_steps=3)
    noise = torch.randn(2, 64, 2, generator=torch.Generator().manual_seed(0))
    ref = run_rollout(model, rollout_inputs_a, greedy, decode_tokens, noise=noise)
    got = fast(rollout_inputs_a, greedy, noise=noise)
    np.testing.assert_array_equal(got.sequences.numpy(), ref.sequences.numpy())
    np.testing.assert_allclose(_np(got.pred_xyz), _np(ref.pred_xyz), rtol=0, atol=ATOL_XYZ)
    sampled = dataclasses.replace(greedy, sampling=SamplingConfig(max_new_tokens=6, temperature=0.6, top_p=0.98))
    runs = [fast(rollout_inputs_a, sampled, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].sequences.numpy(), runs[1].sequences.numpy())
    np.testing.assert_array_equal(_np(runs[0].pred_xyz), _np(runs[1].pred_xyz))
    assert runs[0].reasoning.tokens.shape[0] == 2
    traj = runs[0].reasoning.tokens - decode_tokens.traj_start
    assert not bool(((traj >= 0) & (traj < decode_tokens.traj_vocab_size)).any())  # trajectory bins stay masked


def test_fp8_linear_and_fp8_decode(model_a, rollout_inputs_a, decode_tokens) -> None:  # type: ignore[no-untyped-def]
    """e4m3 keeps 3 mantissa bits (weight error <= 6.25 %); with per-row scales an output's relative error over
    K = 64 terms is ~2 %, so 5 % bounds it. The FP8 decode of the tiny model must run and keep the masking."""
    gen = torch.Generator().manual_seed(0)
    w, x = torch.randn(96, 64, generator=gen), torch.randn(3, 64, generator=gen)
    ref = x @ w.T
    out = Fp8Linear(w, "dequant")(x)
    assert float((out - ref).norm() / ref.norm()) < 0.05
    fast = FastRollout(model_a, decode_tokens, FastOptions(fp8_decode=True), share_weights=False)
    assert fast.info.fp8_mode == "dequant"
    settings = RolloutSettings(SamplingConfig(max_new_tokens=4, greedy=True), num_samples=1, flow_steps=2)
    r = fast(rollout_inputs_a, settings, noise=torch.zeros(1, 64, 2))
    assert r.reasoning.tokens.shape == (1, 4)
    assert bool(torch.isfinite(r.pred_xyz).all())


def test_triton_gemv_in_the_interpreter(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The FP8 GEMV kernel through Triton's CPU interpreter (the GPU compiles the same source); skipped unless
    ``TRITON_INTERPRET=1`` and triton importable (checked with triton 3.6.0, numpy 2.2: the interpreter trips on
    numpy 2.4's scalar conversion). Output is bf16: matches the float32 dequantised product to bf16 rounding."""
    if os.environ.get("TRITON_INTERPRET") != "1":  # must be set before anything imports triton (torch may)
        pytest.skip("run with TRITON_INTERPRET=1 where triton is installed")
    pytest.importorskip("triton")
    import sys

    from alpamayo_ros.model.fast import fp8

    sys.modules.pop("alpamayo_ros.model.fast._triton_gemv", None)
    monkeypatch.setattr(fp8, "_COMPILED", {})
    gen = torch.Generator().manual_seed(0)
    w = (torch.randn(64, 1024, generator=gen) * 0.02).bfloat16()
    x = torch.randn(2, 1024, generator=gen).bfloat16()
    ref = Fp8Linear(w, "dequant")(x.float())
    for cfg in fp8.TRITON_CANDIDATES:
        monkeypatch.setitem(fp8.TRITON_CONFIGS, (64, 1024), cfg)
        lin = Fp8Linear(w, "triton")
        assert lin.mode == "triton"
        out = lin(x).float()
        np.testing.assert_allclose(_np(out), _np(ref), rtol=2**-7, atol=1e-3)
