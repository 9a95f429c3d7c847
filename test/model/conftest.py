"""Shared fixtures for the model tests: goldens of official_tiny_a, the loaded checkpoint, one greedy rollout."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

# Hermetic tokenizer cache (the offline build takes ~2 s once per session).
os.environ.setdefault("ALPAMAYO_ROS_CACHE", tempfile.mkdtemp(prefix="alpamayo_tok_"))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread here: on the shared 2-core box OpenMP oversubscription stalls make tiny ops 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class Goldens:
    dir: Path
    inputs: dict[str, np.ndarray]
    processor: dict[str, np.ndarray]
    prefill: dict[str, np.ndarray]
    decode: dict[str, np.ndarray]
    expert: dict[str, np.ndarray]
    kv: dict[str, np.ndarray]
    action_space: dict[str, np.ndarray]
    prompt_text: str


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def goldens_a(official_tiny_a: Path) -> Goldens:
    g = official_tiny_a / "golden"
    return Goldens(
        dir=official_tiny_a,
        inputs=_npz(g / "inputs.npz"),
        processor=_npz(g / "processor_outputs.npz"),
        prefill=_npz(g / "prefill.npz"),
        decode=_npz(g / "decode.npz"),
        expert=_npz(g / "expert.npz"),
        kv=_npz(g / "prompt_kv_cache.npz"),
        action_space=_npz(g / "action_space.npz"),
        prompt_text=(g / "prompt_text.txt").read_text(),
    )


@pytest.fixture(scope="session")
def tokenizer():  # type: ignore[no-untyped-def]
    from alpamayo_ros.model.tokenizer import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="session")
def decode_tokens(tokenizer):  # type: ignore[no-untyped-def]
    from alpamayo_ros.model.generation import DecodeTokens
    from alpamayo_ros.model.tokenizer import token_ids

    ids = token_ids(tokenizer)
    return DecodeTokens(
        traj_start=ids.traj_start,
        traj_vocab_size=ids.traj_vocab_size,
        future_start=ids.traj_future_start,
        pad=ids.pad,
        eos=(ids.im_end, ids.pad),
        history_placeholder=ids.traj_history,
    )


@pytest.fixture(scope="session")
def model_a(official_tiny_a: Path):  # type: ignore[no-untyped-def]
    from alpamayo_ros.model.loader import load_checkpoint

    model, _ = load_checkpoint(official_tiny_a, "cpu", torch.float32)
    return model


@pytest.fixture(scope="session")
def rollout_inputs_a(goldens_a: Goldens, tokenizer):  # type: ignore[no-untyped-def]
    from alpamayo_ros.model.processor import ImageProcessorConfig, preprocess_images, prompt_ids
    from alpamayo_ros.model.rollout import RolloutInputs

    images = torch.from_numpy(goldens_a.inputs["images_uint8"][0].reshape(16, 3, 320, 576))
    processed = preprocess_images(images, ImageProcessorConfig())
    ids = prompt_ids(tokenizer, processed.image_grid_thw, 2)
    return RolloutInputs(
        input_ids=ids,
        pixel_values=processed.pixel_values,
        image_grid_thw=processed.image_grid_thw,
        history_xyz=torch.from_numpy(goldens_a.inputs["ego_history_xyz"][:, 0]),
        history_rot=torch.from_numpy(goldens_a.inputs["ego_history_rot"][:, 0]),
    )


@pytest.fixture(scope="session")
def greedy_rollout_a(model_a, rollout_inputs_a, decode_tokens, goldens_a: Goldens):  # type: ignore[no-untyped-def]
    """The golden call: greedy (official top_k=1), 24 new tokens, 1 sample, the golden initial noise."""
    from alpamayo_ros.model.generation import SamplingConfig
    from alpamayo_ros.model.rollout import RolloutSettings, run_rollout

    step_logits: list[torch.Tensor] = []
    prefill_hidden: list[torch.Tensor] = []
    result = run_rollout(
        model_a,
        rollout_inputs_a,
        RolloutSettings(SamplingConfig(max_new_tokens=24, greedy=True), num_samples=1),
        decode_tokens,
        noise=torch.from_numpy(goldens_a.expert["initial_noise"]),
        keep_intermediates=True,
        on_logits=lambda i, logits: step_logits.append(logits.clone()),
        prefill_hook=lambda logits, hidden: prefill_hidden.append(hidden.clone()),
    )
    result.step_logits = step_logits  # type: ignore[attr-defined]
    result.prefill_hidden = prefill_hidden[0]  # type: ignore[attr-defined]
    return result
