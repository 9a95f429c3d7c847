"""The resumable training state (``--work/last.pt``), stored so that ``torch.load(weights_only=True)`` reads it.

Only tensors, state dicts and plain values (ints, floats, strings, lists, dicts) go into the file: the numpy batch
generator is kept as its bit-generator state dict, not as a pickled object. Loading never unpickles arbitrary
objects, so a work folder copied from elsewhere cannot run code when a run resumes from it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESUME_FILE = "last.pt"


class ResumeError(ValueError):
    """The resumable state cannot be read; the message names the file and what is wrong."""


@dataclass
class TrainingState:
    """Everything a run needs to continue where it stopped.

    Attributes:
        step: optimiser steps taken.
        model: the model's state dict.
        optimizer: the optimiser's state dict.
        batch_rng: numpy generator that draws the batches and the history-dropout mask.
        noise_generator: ``torch.Generator.get_state()`` of the flow-matching noise generator.
        recipe: the training recipe as plain values (``Recipe.as_plain``), to refuse resuming under another one.
        probe: the scene probe's state dict, or None when the run trains without it.
    """

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    batch_rng: np.random.Generator
    noise_generator: torch.Tensor
    recipe: dict[str, Any]
    probe: dict[str, torch.Tensor] | None = None


def save_training_state(path: Path, state: TrainingState) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file, then a rename: a crash keeps the previous state)."""
    payload: dict[str, Any] = {
        "step": state.step,
        "model": state.model,
        "optimizer": state.optimizer,
        "batch_rng": state.batch_rng.bit_generator.state,
        "noise_generator": state.noise_generator,
        "recipe": state.recipe,
    }
    if state.probe is not None:
        payload["probe"] = state.probe
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_training_state(path: Path) -> TrainingState:
    """Read a state written by ``save_training_state`` (tensors land on the CPU; ``load_state_dict`` moves them).

    Raises:
        ResumeError: the file holds pickled objects (an older or foreign format), misses a key, or is unreadable.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ResumeError(
            f"{path}: holds pickled objects that a weights-only load refuses (written by an older version or not by "
            "alpamayo-ros train); start a new --work folder"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise ResumeError(f"{path}: cannot read it ({exc})") from None
    expected = ("step", "model", "optimizer", "batch_rng", "noise_generator", "recipe")
    missing = [key for key in expected if key not in payload] if isinstance(payload, dict) else list(expected)
    if missing:
        raise ResumeError(f"{path}: not a resumable training state (missing {', '.join(missing)}); start a new --work")
    batch_rng = np.random.default_rng()
    batch_rng.bit_generator.state = payload["batch_rng"]
    return TrainingState(
        step=int(payload["step"]),
        model=payload["model"],
        optimizer=payload["optimizer"],
        batch_rng=batch_rng,
        noise_generator=payload["noise_generator"],
        recipe=payload["recipe"],
        probe=payload.get("probe"),
    )
