"""scripts/evaluate_driver.py refuses unusable arguments before it loads a model or renders a bag, and records the
scene parameters a proxy run fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_unknown_scenario_is_refused_before_the_model_loads(capsys: pytest.CaptureFixture[str]) -> None:
    import evaluate_driver

    with pytest.raises(SystemExit) as exit_info:
        # a model path that does not exist: were it loaded first, this would fail on the model instead
        evaluate_driver.main(["--scenarios", "lead_vehicle_braking", "moon_landing", "--proxy", "--model", "/nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario moon_landing" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy", "--set", "lighting=moonlit"], "lighting"),
        (["--proxy", "--set", "warp_factor=9"], "unknown scene parameter 'warp_factor'"),
        (["--set", "lighting=night"], "--set works on rendered samples: add --proxy"),
        (["--training-timing"], "--training-timing works on rendered samples: add --proxy"),
    ],
)
def test_a_bad_scene_override_is_refused_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import evaluate_driver

    with pytest.raises(SystemExit) as exit_info:
        evaluate_driver.main([*args, "--model", "/nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_training_timing_scores_the_training_plans_own_episodes() -> None:
    """Seeds of the training plan are its scenes only at its episode lengths; at 20 s the same seed is another scene
    (the event times scale with the length)."""
    import evaluate_driver

    from alpamayo_ros.sim import SCENARIOS
    from alpamayo_ros.training.data import training_episodes

    scenes = {"distribution": "wide", "overrides": {}}
    plan = training_episodes(4, 4, ("wide",))
    scored = evaluate_driver.proxy_episodes(list(SCENARIOS), [0, 1, 2, 3], scenes, training_timing=True)
    assert len(scored) == len(plan) and set(scored) == set(plan)
    at_20s = evaluate_driver.proxy_episodes(list(SCENARIOS), [0, 1, 2, 3], scenes, training_timing=False)
    assert not set(at_20s) & set(plan)


@pytest.mark.slow
def test_a_proxy_run_scores_the_scenes_it_fixed_and_says_so(tmp_path: Path) -> None:
    """One night free-road episode through the shipped driver: the table records the override, and the samples it
    scored were rendered under it (their cache entry is not the plain episode's)."""
    import evaluate_driver

    from alpamayo_ros.sim import parse_overrides
    from alpamayo_ros.training.data import DataSpec, cache_key, episodes

    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["--proxy", "--model", "default", "--scenarios", "free_road", "--seeds", "3", "--set", "lighting=night"]
    assert evaluate_driver.main([*argv, "--cache", str(cache), "--out", str(out)]) == 0
    table = json.loads((out / "proxy_table.json").read_text())
    assert table["scenes"] == {"distribution": "default", "overrides": {"lighting": "night"}}
    assert table["rows"]["free_road"]["ticks"] > 0
    assert sum(group["ticks"] for group in table["by_cause"].values()) == table["rows"]["all"]["ticks"]
    assert (out / "proxy_causes.md").read_text().startswith("| the label's cause |")
    spec = DataSpec(tick_stride=2)  # what the script renders for the shipped driver (one frame per camera)
    fixed = episodes(["free_road"], [3], [20.0], overrides=parse_overrides(["lighting=night"]))
    plain = episodes(["free_road"], [3], [20.0])
    names = {p.stem for p in cache.rglob("*.npz")}
    assert any(cache_key(spec, fixed[0]) in n for n in names)
    assert not any(cache_key(spec, plain[0]) in n for n in names)


@pytest.mark.parametrize("image_hw", [(64, 128), (96, 192)])
def test_a_proxy_run_renders_at_the_size_the_driver_was_trained_on(image_hw: tuple[int, int]) -> None:
    """Training resizes rendered frames to the recipe's image size; the proxy must too, not feed a driver of larger
    frames small ones its processor scales up."""
    from types import SimpleNamespace

    import evaluate_driver

    from alpamayo_ros.model.processor import ImageProcessorConfig
    from alpamayo_ros.training.checkpoint import DriverSize

    low, high = DriverSize(image_hw=image_hw).pixel_budget()  # the checkpoint's processor budget
    model = SimpleNamespace(
        info=SimpleNamespace(frame_offsets_sec=(-0.3, 0.0)),
        image_cfg=ImageProcessorConfig(min_pixels=low, max_pixels=high),
    )
    spec = evaluate_driver.proxy_spec(model)
    assert spec.image_hw == image_hw
    assert spec.frame_offsets_sec == (-0.3, 0.0) and spec.tick_stride == 2
