"""The training recipe: its defaults are the shipped driver's first stage and the DAgger recipe is its second (as the
checkpoint records its own training), a file changes only the keys it names, and every recipe in scripts/recipes
loads."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from alpamayo_ros.tools import train
from alpamayo_ros.training.checkpoint import PACKAGE_MODEL_DIR
from alpamayo_ros.training.data import training_episodes
from alpamayo_ros.training.recipe import Recipe, load_recipe

from support import REPO

RECIPES = sorted((REPO / "scripts" / "recipes").glob("*.yaml"))


def test_defaults_reproduce_the_first_stage_of_the_shipped_driver() -> None:
    """`alpamayo-ros train` without options trains what the shipped checkpoint says it started from."""
    first = json.loads((PACKAGE_MODEL_DIR / "config.json").read_text())["training"]["started_from"]
    recipe = load_recipe(None)
    assert json.loads(json.dumps(asdict(recipe.driver_size()))) == first["size"]
    assert (recipe.batch_size, recipe.learning_rate, recipe.flow_samples) == (
        first["batch_size"],
        first["lr"],
        first["flow_samples"],
    )
    assert len(training_episodes(recipe.seeds_target, recipe.seeds_other)) == first["train_episodes"]
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    cli = parser.parse_args([])
    assert (cli.steps, cli.seed, cli.history_dropout, cli.scene_loss) == (
        first["steps"],
        first["seed"],
        first["history_dropout"],
        first["scene_loss"],
    )


def test_the_dagger_recipe_reproduces_the_shipped_driver() -> None:
    """The shipped checkpoint was trained with scripts/recipes/closed_loop_finetune.yaml and the command its comment
    gives, on closed-loop data collected by its first stage. It started from the first stage when that was the package
    default ('default'); the file names the first stage's directory instead, so it does not depend on the default."""
    shipped = json.loads((PACKAGE_MODEL_DIR / "config.json").read_text())["training"]
    path = REPO / "scripts" / "recipes" / "closed_loop_finetune.yaml"
    recipe = load_recipe(path)
    assert recipe.init_from == "out/driver_base" and shipped["recipe"]["init_from"] == "default"
    younger = Recipe().as_plain()  # keys added after the shipped driver was trained count as their defaults there
    assert {**recipe.as_plain(), "init_from": "default"} == {**younger, **shipped["recipe"]}
    assert f"#   {shipped['command']}" in path.read_text().splitlines()
    collectors = {data["driver"]["version"] for data in shipped["closed_loop_data"].values()}
    assert len(collectors) == 1 and set(shipped["closed_loop_data"]) == set(recipe.closed_loop_data)
    assert "--model out/driver_base" in path.read_text()


def test_a_file_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("# a wider vision tower\nvision_width: 128\nvision_depth: 4\nlearning_rate: 1\n")
    recipe = load_recipe(path)
    assert recipe == Recipe(vision_width=128, vision_depth=4, learning_rate=1.0)
    assert isinstance(recipe.learning_rate, float)
    size = recipe.driver_size()
    assert (size.vision_hidden, size.vision_depth, size.vision_heads, size.vision_mlp) == (128, 4, 4, 256)
    assert size.text_hidden == Recipe().driver_size().text_hidden  # what a recipe cannot name stays shipped
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing changed\n")
    assert load_recipe(empty) == Recipe()


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_ablation_recipe_loads_and_differs_from_the_shipped_one(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe != Recipe()
    assert f"--recipe scripts/recipes/{path.name}" in path.read_text()  # its model-card command line


def test_the_ablation_recipes_are_there() -> None:
    assert {p.stem for p in RECIPES} >= {
        "two_frames", "wide_vision", "large_frames", "fewer_seeds", "wide_world", "wide_finetune",
        "closed_loop_finetune", "closed_loop_round2", "seen_speed", "wide_only", "wide_then_mixed", "many_scenes",
    }  # fmt: skip
    assert load_recipe(next(p for p in RECIPES if p.stem == "wide_world")).distribution == ("wide",)


def test_a_mixture_repeats_the_seed_plan_per_distribution(tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text("distribution: [default, wide]\ninit_from: out/driver_default\n")
    recipe = load_recipe(path)
    assert (recipe.distribution, recipe.init_from) == (("default", "wide"), "out/driver_default")
    assert load_recipe(_written(tmp_path, "closed_loop_data: out/cl\n")).closed_loop_data == ("out/cl",)
    one = training_episodes(recipe.seeds_target, recipe.seeds_other)
    both = training_episodes(recipe.seeds_target, recipe.seeds_other, recipe.distribution)
    assert both[: len(one)] == one  # the default half is the shipped first stage's plan, episode for episode
    assert [(e.scenario, e.seed, e.seconds) for e in both[len(one) :]] == [(e.scenario, e.seed, e.seconds) for e in one]
    assert {e.distribution for e in both[len(one) :]} == {"wide"}


def test_drop_unseen_speed_is_a_yes_or_no(tmp_path: Path) -> None:
    from alpamayo_ros.training.recipe import RecipeError

    assert load_recipe(_written(tmp_path, "drop_unseen_speed: true\n")).drop_unseen_speed is True
    assert load_recipe(next(p for p in RECIPES if p.stem == "seen_speed")).drop_unseen_speed is True
    assert Recipe().drop_unseen_speed is False  # the shipped stages trained on every closed-loop sample
    with pytest.raises(RecipeError, match=r"written\.yaml: drop_unseen_speed must be true or false, got 1$"):
        load_recipe(_written(tmp_path, "drop_unseen_speed: 1\n"))


def test_missing_file_is_named(tmp_path: Path) -> None:
    from alpamayo_ros.training.recipe import RecipeError

    with pytest.raises(RecipeError, match=r"recipe .*nope\.yaml: cannot read it \(No such file or directory\)"):
        load_recipe(tmp_path / "nope.yaml")


def _written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "written.yaml"
    path.write_text(text)
    return path
