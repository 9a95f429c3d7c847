"""A hostile or corrupt checkpoint config fails fast, before anything is built: sizes out of bounds, or layer counts
that disagree with the tensor names in the safetensors header."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alpamayo_ros.model import loader
from alpamayo_ros.model.config import ConfigError
from alpamayo_ros.model.loader import CheckpointError, load_checkpoint

SMALL = Path(__file__).resolve().parents[2] / "src" / "alpamayo_ros" / "resources" / "models" / "alpamayo_small_driver"


def _copy_with(tmp_path: Path, change: dict[str, object]) -> Path:
    """The shipped small driver with its VLM text config (processor/config.json) changed."""
    ckpt = tmp_path / "ckpt"
    shutil.copytree(SMALL, ckpt)
    vlm_config = ckpt / "processor" / "config.json"
    config = json.loads(vlm_config.read_text())
    config["text_config"].update(change)
    vlm_config.write_text(json.dumps(config))
    return ckpt


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was built before the config was checked")

    monkeypatch.setattr(loader, "build_meta_model", refuse)


@pytest.mark.usefixtures("no_build")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_hidden_layers": 100_000}, r"text_config\.num_hidden_layers = 100000 is not an integer in \[1, 256\]"),
        ({"hidden_size": -4}, r"text_config\.hidden_size = -4 is not an integer"),
        ({"intermediate_size": 1.5}, r"text_config\.intermediate_size = 1\.5 is not an integer"),
    ],
)
def test_sizes_out_of_bounds_fail_before_building(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_checkpoint(_copy_with(tmp_path, change))


@pytest.mark.usefixtures("no_build")
def test_layer_count_must_match_the_safetensors_header(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"config declares 7 (VLM text|expert) layers, the checkpoint holds 4"):
        load_checkpoint(_copy_with(tmp_path, {"num_hidden_layers": 7}))
