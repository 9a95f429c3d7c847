"""The resumable training state: a round trip continues the run exactly (weights, optimiser moments, both random
streams), and the file loads with torch.load(weights_only=True); pickled objects are refused, never run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alpamayo_ros.training.recipe import Recipe
from alpamayo_ros.training.resume import ResumeError, TrainingState, load_training_state, save_training_state


def _trained_state() -> tuple[TrainingState, torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        module(torch.randn(5, 4)).square().mean().backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    batch_rng = np.random.default_rng(7)
    batch_rng.random(11)  # mid-stream, as after some batches
    noise = torch.Generator().manual_seed(3)
    torch.randn(13, generator=noise)
    state = TrainingState(
        step=3,
        model=module.state_dict(),
        optimizer=optimizer.state_dict(),
        batch_rng=batch_rng,
        noise_generator=noise.get_state(),
        recipe=Recipe(vision_depth=3).as_plain(),
        probe={"weight": torch.ones(2, 2)},
    )
    return state, module, optimizer


def test_round_trip_continues_the_run_exactly(tmp_path: Path) -> None:
    state, module, optimizer = _trained_state()
    path = tmp_path / "last.pt"
    save_training_state(path, state)
    assert not path.with_name("last.pt.tmp").exists()
    loaded = load_training_state(path)
    assert loaded.step == 3 and loaded.recipe == Recipe(vision_depth=3).as_plain()
    assert loaded.probe is not None and torch.equal(loaded.probe["weight"], torch.ones(2, 2))

    restored = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))
    restored.load_state_dict(loaded.model)
    restored_optimizer = torch.optim.AdamW(restored.parameters(), lr=1e-2)
    restored_optimizer.load_state_dict(loaded.optimizer)
    batch = torch.randn(5, 4)
    for model, opt in ((module, optimizer), (restored, restored_optimizer)):
        opt.zero_grad()
        model(batch).square().mean().backward()  # type: ignore[no-untyped-call]
        opt.step()
    for (name, original), after in zip(module.state_dict().items(), restored.state_dict().values(), strict=True):
        assert torch.equal(original, after), name  # same moments, so the same next step

    assert np.array_equal(loaded.batch_rng.random(5), state.batch_rng.random(5))
    original_noise, loaded_noise = torch.Generator(), torch.Generator()
    original_noise.set_state(state.noise_generator)
    loaded_noise.set_state(loaded.noise_generator)
    assert torch.equal(torch.randn(4, generator=loaded_noise), torch.randn(4, generator=original_noise))


def test_the_file_is_weights_only_loadable(tmp_path: Path) -> None:
    state, _, _ = _trained_state()
    save_training_state(tmp_path / "last.pt", state)
    raw = torch.load(tmp_path / "last.pt", weights_only=True)
    assert raw["batch_rng"]["bit_generator"] == "PCG64"  # the generator's plain state, not the object


def test_pickled_objects_are_refused_not_unpickled(tmp_path: Path) -> None:
    """A state holding a pickled object loads with weights_only=False only, so refusing it shows the loader's mode."""
    path = tmp_path / "last.pt"
    torch.save({"step": 3, "model": {}, "rng": np.random.default_rng(0)}, path)
    assert torch.load(path, weights_only=False)["step"] == 3
    with pytest.raises(ResumeError, match=r"last\.pt: holds pickled objects that a weights-only load refuses"):
        load_training_state(path)


@pytest.mark.parametrize("payload", [{"step": 3, "model": {}}, torch.zeros(2)])
def test_incomplete_state_is_named(tmp_path: Path, payload: object) -> None:
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(ResumeError, match=r"not a resumable training state \(missing .*optimizer"):
        load_training_state(tmp_path / "last.pt")
