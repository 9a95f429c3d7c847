"""The training recipe: what shapes the small driver, its data and its optimiser, read from a YAML file.

``alpamayo-ros train`` keeps on its command line what a user reproducing the shipped driver touches (where to write,
how long, which hardware, resuming, and the two measures the model card explains: ``--history-dropout`` and
``--scene-loss``). Everything an experiment varies lives here instead, so the CLI does not grow a flag per ablation:
``--recipe FILE.yaml`` names only the keys it changes, every other key keeps the value of the shipped driver's first
stage (the field defaults below). The shipped driver's second stage (``closed_loop_finetune.yaml``) and the ablations
of the model card are such files, in ``scripts/recipes/``.

Schema: a YAML mapping; every key is optional and unknown keys are refused (a typo must not train the default).

===================  ==============  ===============================================================================
key                  type            meaning
===================  ==============  ===============================================================================
image_size           [int, int]      H, W in pixels every camera frame is resized to; multiples of 32 (patch 16 x
                                     merge 2)
frame_offsets_sec    [float, ...]    frames per camera, seconds relative to t0: ascending, distinct, <= 0, on the
                                     0.1 s camera ticks
vision_width         int             vision tower width, a multiple of 32 (one head per 32 channels, MLP 2x wide)
vision_depth         int             vision tower layers, >= 1
seeds_target         int             training seeds per scenario scored by ADE (lead braking, pedestrian, red light)
seeds_other          int             training seeds per other scenario
distribution         str or [str]    the scenario distribution(s) the training episodes are drawn from
                                     (sim.distributions: default, wide, shifted, composed, bends); a list repeats the
                                     seed plan once per distribution (a mixture)
init_from            str             '' = random weights; otherwise a checkpoint directory of the same size whose
                                     weights, tokenizer and action normalisation the training starts from
                                     ('default' = the package's small driver): fine-tuning, e.g. a second stage
closed_loop_data     str or [str]    directories of closed-loop samples (``alpamayo-ros collect``: states a driver
                                     reached by itself, labelled by the expert planner) trained on beside the
                                     rendered episodes: DAgger with ``init_from`` naming the driver that collected
drop_unseen_speed    bool            leave out the training samples whose only reason to slow down is the scene's
                                     cruise speed, which no camera shows (``sim.labels.rests_on_unseen_speed``; in
                                     practice closed-loop samples of a driver that overshot)
batch_size           int             samples per step
learning_rate        float           peak AdamW learning rate (cosine to 5 % of it)
warmup_steps         int             linear warm-up steps
flow_samples         int             noise draws per sample and step in the flow-matching loss
flow_weight          float           weight of the flow-matching loss against the language loss
===================  ==============  ===============================================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from alpamayo_ros.core.rig import STEP_SEC
from alpamayo_ros.sim.distributions import DISTRIBUTIONS
from alpamayo_ros.training.checkpoint import DriverSize

_SHIPPED_SIZE = DriverSize()
# One vision attention head per this many channels of the vision tower.
VISION_HEAD_WIDTH = 32
# Image sides must be whole merged patches: patch 16 x spatial merge 2.
IMAGE_MULTIPLE = 32


class RecipeError(ValueError):
    """A recipe file is missing, malformed or names an impossible value; the message names the file and the key."""


@dataclass(frozen=True)
class Recipe:
    """One training recipe; the defaults are the shipped driver's first stage (the module docstring: each key)."""

    image_size: tuple[int, int] = _SHIPPED_SIZE.image_hw
    frame_offsets_sec: tuple[float, ...] = _SHIPPED_SIZE.frame_offsets_sec
    vision_width: int = _SHIPPED_SIZE.vision_hidden
    vision_depth: int = _SHIPPED_SIZE.vision_depth
    seeds_target: int = 48
    seeds_other: int = 24
    distribution: tuple[str, ...] = ("default",)
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 60
    flow_samples: int = 2
    flow_weight: float = 1.0
    init_from: str = ""
    closed_loop_data: tuple[str, ...] = ()
    drop_unseen_speed: bool = False

    def driver_size(self) -> DriverSize:
        """The model size this recipe trains: the shipped driver's, with the recipe's images and vision tower."""
        return DriverSize(
            image_hw=self.image_size,
            frame_offsets_sec=self.frame_offsets_sec,
            vision_hidden=self.vision_width,
            vision_depth=self.vision_depth,
            vision_heads=self.vision_width // VISION_HEAD_WIDTH,
            vision_mlp=2 * self.vision_width,
        )

    def as_plain(self) -> dict[str, Any]:
        """Plain values (lists, numbers): for the checkpoint's provenance and the resumable state."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def load_recipe(path: Path | None) -> Recipe:
    """The recipe in ``path`` (YAML), or the shipped driver's first stage for ``None``.

    Raises:
        RecipeError: unreadable file, not a mapping, an unknown key, a value of the wrong type or out of range.
    """
    if path is None:
        return Recipe()
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise RecipeError(f"recipe {path}: cannot read it ({reason})") from None
    return recipe_from_mapping({} if raw is None else raw, str(path))


def recipe_from_mapping(raw: object, source: str) -> Recipe:
    """Build and check a recipe from parsed YAML; ``source`` names it in errors.

    Raises:
        RecipeError: see ``load_recipe``.
    """
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {source}: expected a mapping of keys to values, got {type(raw).__name__}")
    defaults = Recipe()
    known = [f.name for f in fields(Recipe)]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise RecipeError(f"recipe {source}: unknown key {key!r} (known: {', '.join(known)})")
        values[key] = _typed(source, key, value, getattr(defaults, key))
    recipe = Recipe(**values)
    _check(recipe, source)
    return recipe


def _typed(source: str, key: str, value: object, default: object) -> object:
    """``value`` converted to the type of the field's default (ints stay ints; an int is a valid float)."""

    def number(item: object, kind: type) -> int | float:
        allowed = (int,) if kind is int else (int, float)
        if isinstance(item, bool) or not isinstance(item, allowed):
            wanted = "an integer" if kind is int else "a number"
            raise RecipeError(f"recipe {source}: {key} must be {wanted}, got {item!r}")
        return kind(item)  # type: ignore[no-any-return]

    if key in ("distribution", "closed_loop_data"):
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(name, str) and name for name in names):
            raise RecipeError(f"recipe {source}: {key} must be a name or a list of names, got {value!r}")
        return tuple(names)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RecipeError(f"recipe {source}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise RecipeError(f"recipe {source}: {key} must be a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        kind = type(default[0])
        if not isinstance(value, list) or not value:
            raise RecipeError(f"recipe {source}: {key} must be a list of numbers, got {value!r}")
        return tuple(number(item, kind) for item in value)
    return number(value, type(default))


def _check(recipe: Recipe, source: str) -> None:
    """Ranges the model and the data pipeline need, each refused with the key and the value."""
    height_width = recipe.image_size
    if len(height_width) != 2 or any(side <= 0 or side % IMAGE_MULTIPLE for side in height_width):
        raise RecipeError(
            f"recipe {source}: image_size {list(height_width)}: needs H and W, both positive multiples of "
            f"{IMAGE_MULTIPLE} (patch 16 x merge 2)"
        )
    offsets = recipe.frame_offsets_sec
    on_ticks = all(abs(o / STEP_SEC - round(o / STEP_SEC)) < 1e-6 for o in offsets)
    if not on_ticks or any(o > 0 for o in offsets) or list(offsets) != sorted(set(offsets)):
        raise RecipeError(
            f"recipe {source}: frame_offsets_sec {list(offsets)}: must be ascending, distinct, <= 0 and multiples of "
            f"{STEP_SEC} s (the camera ticks)"
        )
    if recipe.vision_width <= 0 or recipe.vision_width % VISION_HEAD_WIDTH:
        raise RecipeError(
            f"recipe {source}: vision_width {recipe.vision_width}: must be a positive multiple of {VISION_HEAD_WIDTH} "
            "(one attention head per 32 channels)"
        )
    for name in recipe.distribution:
        if name not in DISTRIBUTIONS:
            raise RecipeError(f"recipe {source}: distribution {name!r}: must be one of {', '.join(DISTRIBUTIONS)}")
    if len(set(recipe.distribution)) != len(recipe.distribution):
        raise RecipeError(f"recipe {source}: distribution {list(recipe.distribution)}: names a distribution twice")
    if len(set(recipe.closed_loop_data)) != len(recipe.closed_loop_data):
        raise RecipeError(f"recipe {source}: closed_loop_data {list(recipe.closed_loop_data)}: names a directory twice")
    counts = ("vision_depth", "seeds_target", "seeds_other", "batch_size", "flow_samples")
    for key in counts:
        if getattr(recipe, key) < 1:
            raise RecipeError(f"recipe {source}: {key} {getattr(recipe, key)}: must be >= 1")
    if recipe.warmup_steps < 0:
        raise RecipeError(f"recipe {source}: warmup_steps {recipe.warmup_steps}: must be >= 0")
    for key in ("learning_rate", "flow_weight"):
        value = getattr(recipe, key)
        if not (math.isfinite(value) and value > 0):
            raise RecipeError(f"recipe {source}: {key} {value}: must be a finite number > 0")
