"""Small-driver training: tokenizer round trip, a few steps lower the joint loss, the checkpoint layout loads through
the official loader, and the shipped weights predict through the DrivingModel interface with parseable reasoning."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from alpamayo_ros.core.decisions import Lateral, Longitudinal, parse_decision
from alpamayo_ros.core.model_spec import ModelSpec
from alpamayo_ros.core.rig import CAMERA_NAMES
from alpamayo_ros.model.alpamayo_r1 import AlpamayoR1
from alpamayo_ros.model.coc import reasoning_from_ids
from alpamayo_ros.model.loader import load_checkpoint
from alpamayo_ros.model.tokenizer import ALPAMAYO_SPECIAL_NAMES, check_against_config, special_token, token_ids
from alpamayo_ros.runtime.torch_backend import load_torch_model, resolve_model_path
from alpamayo_ros.training.checkpoint import (
    ActionStats,
    DriverSize,
    StartingPointError,
    build_config,
    checkpoint_config,
    save_checkpoint,
    starting_point,
)
from alpamayo_ros.training.collate import Collator
from alpamayo_ros.training.data import (
    DataSpec,
    Episode,
    SampleSet,
    load_episode,
    load_samples,
    render_episode,
    sample_input,
    save_episode,
)
from alpamayo_ros.training.objective import joint_loss
from alpamayo_ros.training.recipe import Recipe
from alpamayo_ros.training.resume import RESUME_FILE, TrainingState, save_training_state
from alpamayo_ros.training.vocab import build_tokenizer

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY = DriverSize(
    text_hidden=32, text_layers=2, text_heads=2, kv_heads=1, head_dim=16, text_mlp=64, expert_hidden=32,
    expert_mlp=64, expert_heads=2, vision_hidden=32, vision_depth=1, vision_heads=2, vision_mlp=64,
    in_proj_hidden=32, history_bins=100,
)  # fmt: skip
TEXTS = [
    "The lead vehicle 12 m ahead is braking. I should decelerate to keep a safe distance. "
    "Keep the lane and decelerate.",
    "The traffic light ahead is red and the stop line is 31 m away. I must stop at the stop line. "
    "Keep the lane and come to a stop.",
    "The lane ahead is clear. I should keep my speed. Keep the lane and keep a steady speed.",
]


@pytest.fixture(scope="module")
def episode() -> SampleSet:
    """Four real samples (rendered scenario ticks) of a short red-light episode."""
    d = render_episode(DataSpec(tick_stride=12), Episode("red_light_stop_line", 3, 6.0))
    n = len(d.texts)
    return SampleSet(d.images, d.hist_xyz, d.hist_yaw, d.future, d.actions, d.speed, d.lon, d.lat, d.texts, ["r"] * n)


def test_loading_several_episodes_keeps_their_order_and_applies_the_filter_to_each(tmp_path: Path) -> None:
    """The training set is the episodes' samples end to end, each image beside its own future and text, with the
    filter applied per sample (load_samples fills one preallocated image block instead of concatenating)."""
    spec = DataSpec(image_hw=(32, 64), render_wh=(128, 72), tick_stride=12)
    eps = [Episode("lead_vehicle_braking", 1, 6.0), Episode("free_road", 2, 6.0)]
    paths = []
    for i, ep in enumerate(eps):
        paths.append(tmp_path / f"{i}.npz")
        save_episode(paths[-1], render_episode(spec, ep))
    parts = [load_episode(p) for p in paths]
    keep = [[not t.startswith("The lane ahead is clear") for t in d.texts] for d in parts]
    assert any(not k for ks in keep for k in ks) and any(k for ks in keep for k in ks)
    data = load_samples(paths, eps, keep=lambda text: not text.startswith("The lane ahead is clear"))
    masks = [np.asarray(k) for k in keep]
    for name in ("images", "hist_xyz", "hist_yaw", "future", "actions", "speed", "lon", "lat"):
        want = np.concatenate([getattr(d, name)[m] for d, m in zip(parts, masks, strict=True)])
        np.testing.assert_array_equal(getattr(data, name), want, err_msg=name)
    assert data.texts == [t for d, m in zip(parts, masks, strict=True) for t, k in zip(d.texts, m, strict=True) if k]
    assert data.scenario == [ep.scenario for ep, m in zip(eps, masks, strict=True) for k in m if k]
    with pytest.raises(ValueError, match="no episode files"):
        load_samples([], [])


def test_loading_holds_the_training_images_about_once(tmp_path: Path) -> None:
    """The image block is most of a training run's memory: the loader's peak stays near one copy of it (plus one
    episode being read), where concatenating the episodes, or keeping slices of them, holds every image twice."""
    import tracemalloc

    spec = DataSpec(image_hw=(32, 64), render_wh=(128, 72), tick_stride=6)
    eps = [Episode("free_road", seed, 6.0) for seed in range(16)]
    paths = [tmp_path / f"{i}.npz" for i in range(len(eps))]
    for path, ep in zip(paths, eps, strict=True):
        save_episode(path, render_episode(spec, ep))
    tracemalloc.start()
    try:
        data = load_samples(paths, eps)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.images.nbytes > 0
    assert peak < 1.5 * data.images.nbytes, (peak, data.images.nbytes)


def test_tokenizer_round_trip_and_layout() -> None:
    tok = build_tokenizer(TEXTS, traj_vocab_size=100)
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text
        assert len(ids) < len(text.split()) * 2  # words are whole tokens, not bytes
    ids = token_ids(tok, 100)  # the model code's own lookup by string
    assert ids.traj_start == tok.token_to_id("<i0>") and tok.token_to_id("<i99>") == ids.traj_start + 99
    assert tok.token_to_id("<i100>") is None
    specials = [tok.token_to_id(special_token(n)) for n in ALPAMAYO_SPECIAL_NAMES if n != "image_pad"]
    assert min(specials) > ids.traj_start + 99  # official order: base, Qwen specials, bins, Alpamayo specials
    assert tok.get_vocab_size() < 1000
    generated = [*tok.encode(TEXTS[0]).ids, ids.cot_end, ids.traj_future_start]
    assert reasoning_from_ids(tok, generated).text == TEXTS[0]


def test_few_steps_reduce_the_joint_loss_and_checkpoint_round_trips(episode: SampleSet, tmp_path: Path) -> None:
    tok = build_tokenizer(sorted(set(episode.texts)), TINY.future_bins + TINY.history_bins)
    a = episode.actions
    stats = ActionStats(float(a[..., 0].mean()), float(a[..., 0].std()) + 0.1, 0.0, 0.01)
    cfg, _, vlm = build_config(TINY, tok, stats)
    torch.manual_seed(0)
    model = AlpamayoR1(cfg).train()
    collate = Collator.for_config(tok, cfg)
    batch = collate(episode, np.arange(len(episode)))
    assert batch.input_ids.shape[0] == len(episode)
    assert batch.pixel_values.shape[0] == len(episode) * len(CAMERA_NAMES) * 32  # 64x128 -> 4x8 patches
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    first = joint_loss(model, batch, collate.future_start_id, generator=gen)
    losses = []
    for _ in range(12):
        parts = joint_loss(model, batch, collate.future_start_id, generator=gen)
        opt.zero_grad()
        parts.total.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(float(parts.lm.detach()))
    assert losses[-1] < 0.7 * float(first.lm.detach())

    out = save_checkpoint(
        model, tmp_path / "ckpt", raw_config=checkpoint_config(TINY, tok, stats, {}), vlm=vlm, tok=tok, size=TINY
    )
    assert {p.name for p in (out / "processor").iterdir()} >= {
        "tokenizer.json", "chat_template.json", "preprocessor_config.json", "config.json",
    }  # fmt: skip
    loaded, _ = load_checkpoint(out, vlm_dir=out / "processor")  # the official-layout loader, every key checked
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.detach(), msg=key)
    check_against_config(tok, loaded.cfg.vocab_size, loaded.cfg.traj_token_start_idx, loaded.cfg.traj_token_ids)


def test_a_fine_tuning_starts_from_the_checkpoints_weights_vocabulary_and_normalisation(tmp_path: Path) -> None:
    """``init_from``: the saved weights load into a fresh model of the same size and predict the same; the
    tokenizer and the action normalisation are the checkpoint's (its weights were trained on them); the first stage's
    training record is kept for the provenance."""
    tok = build_tokenizer(TEXTS, TINY.future_bins + TINY.history_bins)
    stats = ActionStats(0.1, 1.3, 0.002, 0.03)
    cfg, _, vlm = build_config(TINY, tok, stats)
    torch.manual_seed(3)
    first = AlpamayoR1(cfg).eval()
    record = {"size": json.loads(json.dumps(asdict(TINY))), "steps": 7}
    out = save_checkpoint(
        first, tmp_path / "stage1", raw_config=checkpoint_config(TINY, tok, stats, record), vlm=vlm, tok=tok, size=TINY
    )
    start = starting_point(out, TINY)
    assert start.stats == stats and start.training == record
    assert start.tokenizer.get_vocab() == tok.get_vocab()
    second = AlpamayoR1(build_config(TINY, start.tokenizer, start.stats)[0]).eval()
    missing, unexpected = second.load_state_dict(start.weights, strict=False)
    assert not unexpected and set(missing) <= {"vlm.lm_head.weight"}
    second.tie_embeddings()
    ids = torch.tensor([[5, 9, 17, 3]])
    with torch.no_grad():
        torch.testing.assert_close(second.language_model(input_ids=ids).last_hidden_state,
                                   first.language_model(input_ids=ids).last_hidden_state)  # fmt: skip
        torch.testing.assert_close(second.vlm.lm_head.weight, first.vlm.lm_head.weight)
    wider = replace(TINY, vision_hidden=64, vision_mlp=128)
    with pytest.raises(
        StartingPointError, match=r"another model size: vision_hidden 32 \(recipe: 64\), vision_mlp 64 \(recipe: 128\)$"
    ):
        starting_point(out, wider)
    with pytest.raises(StartingPointError, match="nothing: no such directory \\(train the stage it names first"):
        starting_point(tmp_path / "nothing", TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StartingPointError, match="empty: not a readable small-driver checkpoint"):
        starting_point(tmp_path / "empty", TINY)
    (tmp_path / "stage1" / "config.json").write_text(json.dumps(checkpoint_config(TINY, tok, stats, {})))
    with pytest.raises(StartingPointError, match="records no small-driver size"):
        starting_point(out, TINY)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("init_from", "init_from {}: no such directory"),
        ("closed_loop_data", "closed-loop data {}: no manifest.json \\(collect it first"),
    ],
)
def test_train_cli_refuses_a_missing_starting_point_or_data_before_rendering(
    tmp_path: Path, key: str, message: str
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"{key}: {tmp_path / 'nothing'}\n")
    cache = tmp_path / "cache"
    _assert_train_refuses(
        tmp_path, ["--recipe", str(recipe), "--cache", str(cache)], message.format(re.escape(str(tmp_path / "nothing")))
    )
    assert not cache.exists()  # refused before a single episode was rendered


@pytest.mark.skipif(resolve_model_path("default") == "tiny", reason="no shipped small-driver weights in this checkout")
def test_shipped_checkpoint_predicts_with_parseable_reasoning(episode: SampleSet) -> None:
    model = load_torch_model(ModelSpec(model_path="default", device="cpu", seed=0))  # the node's own loader
    try:
        assert model.info.cameras == CAMERA_NAMES and not model.info.untrained
        assert model.info.name == "alpamayo-small-driver" and model.info.frame_offsets_sec == (0.0,)
        pred = model.predict(sample_input(model, episode, len(episode) - 1))
        assert pred.xyz.shape == (1, 64, 3) and pred.rotation.shape == (1, 64, 3, 3)
        assert np.isfinite(pred.xyz).all()
        assert not pred.truncated[0]
        decision = parse_decision(pred.reasoning[0])
        assert decision.longitudinal != Longitudinal.UNKNOWN and decision.lateral != Lateral.UNKNOWN
        assert pred.token_logprobs is not None and len(pred.token_logprobs[0]) == pred.num_generated_tokens[0]
        assert (pred.token_logprobs[0] <= 0.0).all()  # natural-log probabilities of the reasoning's own tokens
    finally:
        model.close()


def test_constant_velocity_history_keeps_the_speed_and_hides_the_braking(episode: SampleSet) -> None:
    from alpamayo_ros.model.action_space import UnicycleAccelCurvatureActionSpace, yaw_rotation
    from alpamayo_ros.training.collate import constant_velocity_history
    from alpamayo_ros.training.data import RAW_ACTION_SPACE

    last = len(episode) - 1  # the red-light episode's last sample brakes towards the stop line
    true_steps = np.linalg.norm(np.diff(episode.hist_xyz[last, :, :2], axis=0), axis=-1)
    assert true_steps[0] - true_steps[-1] > 0.05  # the real history shows the braking
    cv = constant_velocity_history(episode.hist_xyz, episode.hist_yaw)
    assert cv.shape == episode.hist_xyz.shape and cv.dtype == episode.hist_xyz.dtype
    np.testing.assert_allclose(cv[:, -1], 0.0, atol=1e-6)  # ends at t0, in the t0 frame
    np.testing.assert_allclose(cv[..., 1], 0.0)  # straight ahead
    steps = np.diff(cv[..., 0], axis=1)
    np.testing.assert_allclose(steps, steps[:, :1].repeat(steps.shape[1], axis=1), rtol=1e-5)  # one speed
    space = UnicycleAccelCurvatureActionSpace(RAW_ACTION_SPACE).double()
    v_true = space.estimate_t0_speed(
        torch.from_numpy(episode.hist_xyz).double(), yaw_rotation(torch.from_numpy(episode.hist_yaw).double())
    )
    v_cv = space.estimate_t0_speed(torch.from_numpy(cv).double(), yaw_rotation(torch.zeros(cv.shape[:2]).double()))
    torch.testing.assert_close(v_cv, v_true, atol=5e-3, rtol=0.0)  # the action targets stay valid


def test_collator_swaps_only_the_dropped_histories(episode: SampleSet) -> None:
    tok = build_tokenizer(sorted(set(episode.texts)), TINY.future_bins + TINY.history_bins)
    cfg, _, _ = build_config(TINY, tok, ActionStats(0.0, 1.0, 0.0, 0.01))
    collate = Collator.for_config(tok, cfg)
    index = np.arange(len(episode))
    kept = collate(episode, index)
    drop = np.zeros(len(episode), dtype=bool)
    drop[-1] = True
    mixed = collate(episode, index, drop)
    torch.testing.assert_close(mixed.input_ids[:-1], kept.input_ids[:-1])
    assert not torch.equal(mixed.input_ids[-1], kept.input_ids[-1])  # its history tokens changed
    torch.testing.assert_close(mixed.actions, kept.actions)  # targets untouched
    torch.testing.assert_close(mixed.labels, kept.labels)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--history-dropout", "1.0"], r"--history-dropout 1.0: must be in \[0, 1\)"),
        *((["--scene-loss", w], f"--scene-loss {w}: must be a finite weight >= 0") for w in ("-0.5", "nan")),
    ],
)
def test_train_cli_refuses_bad_values_before_writing_anything(tmp_path: Path, argv: list[str], message: str) -> None:
    _assert_train_refuses(tmp_path, argv, message)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("image_size: [100, 200]", r"image_size \[100, 200\]: needs H and W, both positive multiples of 32"),
        ("vision_width: 100", "vision_width 100: must be a positive multiple of 32"),
        *(
            (
                f"frame_offsets_sec: {offsets}",
                f"frame_offsets_sec {re.escape(offsets)}: must be ascending, distinct, <= 0 and multiples of 0\\.1 s",
            )
            for offsets in ("[0.0, -0.3]", "[-0.25, 0.0]", "[0.1]")
        ),
        ("vision_widht: 128", "unknown key 'vision_widht' \\(known: image_size, "),
        ("batch_size: 1.5", "batch_size must be an integer, got 1.5"),
        ("distribution: night", "distribution 'night': must be one of default, wide, shifted, composed, bends"),
        ("distribution: 3", "distribution must be a name or a list of names, got 3"),
        ("distribution: [default, default]", r"distribution \['default', 'default'\]: names a distribution twice"),
        ("distribution: [default, night]", "distribution 'night': must be one of default, wide, shifted, composed, "),
        ("closed_loop_data: []", "closed_loop_data must be a name or a list of names, got \\[\\]"),
        ("closed_loop_data: [a, a]", r"closed_loop_data \['a', 'a'\]: names a directory twice"),
        ("learning_rate: .nan", "learning_rate nan: must be a finite number > 0"),
        ("- image_size", "expected a mapping of keys to values, got list"),
        ("image_size: [64", "cannot read it"),
    ],
)
def test_train_cli_refuses_a_bad_recipe_before_writing_anything(tmp_path: Path, recipe: str, message: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe + "\n")
    _assert_train_refuses(tmp_path, ["--recipe", str(path)], f"recipe {re.escape(str(path))}: {message}")


def _assert_train_refuses(tmp_path: Path, argv: list[str], message: str) -> None:
    """`alpamayo-ros train ARGV` exits with ``message`` (a pattern) and writes no checkpoint."""
    import argparse

    from alpamayo_ros.tools import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "o"), *argv])
    with pytest.raises(SystemExit, match=message):
        train.run(args)
    assert not (tmp_path / "o").exists()


def _saved_state(work: Path, probe: bool, recipe: Recipe) -> None:
    """A resumable state in ``work`` as a run would leave it (a real module, optimiser and generators)."""
    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(module.parameters())
    module(torch.ones(1, 2)).sum().backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    work.mkdir()
    state = TrainingState(
        step=3,
        model=module.state_dict(),
        optimizer=optimizer.state_dict(),
        batch_rng=np.random.default_rng(0),
        noise_generator=torch.Generator().manual_seed(0).get_state(),
        recipe=recipe.as_plain(),
        probe=module.state_dict() if probe else None,
    )
    save_training_state(work / RESUME_FILE, state)


@pytest.mark.parametrize(
    ("probe", "recipe", "argv", "message"),
    [
        (False, Recipe(), [], "trained without the scene probe; resume it with --scene-loss 0 "),
        (True, Recipe(), ["--scene-loss", "0"], "trained with the scene probe; resume it with --scene-loss > 0 "),
        (True, Recipe(vision_width=128), [], "was trained with another recipe (vision_width 128); resume it with "),
    ],
)
def test_train_cli_refuses_to_resume_across_a_scene_probe_or_recipe_change(
    tmp_path: Path, probe: bool, recipe: Recipe, argv: list[str], message: str
) -> None:
    _saved_state(tmp_path / "w", probe, recipe)
    _assert_train_refuses(tmp_path, ["--work", str(tmp_path / "w"), "--resume", *argv], re.escape(message))


def test_a_state_saved_before_a_recipe_key_existed_resumes_with_that_keys_default(tmp_path: Path) -> None:
    from alpamayo_ros.tools.train import _resumable_state
    from alpamayo_ros.training.resume import load_training_state

    _saved_state(tmp_path / "w", True, Recipe())
    state = load_training_state(tmp_path / "w" / RESUME_FILE)
    del state.recipe["closed_loop_data"]  # as a run of an older version saved it
    save_training_state(tmp_path / "w" / RESUME_FILE, state)
    assert _resumable_state(tmp_path / "w" / RESUME_FILE, Recipe(), 1.0).step == 3
    with pytest.raises(SystemExit, match=r"another recipe \(closed_loop_data \[\]\)"):
        _resumable_state(tmp_path / "w" / RESUME_FILE, Recipe(closed_loop_data=("out/cl",)), 1.0)


def test_train_cli_refuses_to_resume_a_pickled_state(tmp_path: Path) -> None:
    """The state format before weights-only loading pickled the numpy generator: refused, never unpickled."""
    (tmp_path / "w").mkdir()
    torch.save({"model": {}, "step": 3, "rng": np.random.default_rng(0)}, tmp_path / "w" / RESUME_FILE)
    _assert_train_refuses(tmp_path, ["--work", str(tmp_path / "w"), "--resume"], "holds pickled objects")


def test_an_episode_draws_its_scene_from_its_distribution() -> None:
    from alpamayo_ros.training.data import cache_key

    spec = DataSpec(tick_stride=20)
    day, night = Episode("free_road", 5, 4.0), Episode("free_road", 5, 4.0, "shifted")  # shifted: always night
    assert cache_key(spec, day) != cache_key(spec, night)
    assert render_episode(spec, night).images.mean() < 0.6 * render_episode(spec, day).images.mean()


def test_an_episode_renders_the_scene_parameters_it_fixes() -> None:
    """``episodes(..., overrides=...)`` fixes a parameter in every scene it lists, and the cache tells them apart."""
    from alpamayo_ros.sim import parse_overrides
    from alpamayo_ros.training.data import cache_key, episodes

    spec = DataSpec(tick_stride=20)
    (day,) = episodes(["free_road"], [5], [4.0])
    (night,) = episodes(["free_road"], [5], [4.0], overrides=parse_overrides(["lighting=night"]))
    assert night.overrides == (("lighting", "night"),) and night.distribution == "default"
    assert cache_key(spec, day) != cache_key(spec, night)
    assert render_episode(spec, night).images.mean() < 0.6 * render_episode(spec, day).images.mean()
