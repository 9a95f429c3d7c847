"""Config parsing, the safetensors loader (errors name the offending keys) and the full-size manifest."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from alpamayo_ros.model.config import (
    QWEN3_VL_8B_CONFIG,
    ConfigError,
    derive_vlm_config,
    load_config,
    parse_config,
    resolve_vlm_config,
)
from alpamayo_ros.model.loader import CheckpointError, build_meta_model, load_checkpoint

from support import FIXTURES, shared_fixture


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    shutil.copytree(src / "processor", dst / "processor")
    return dst


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})


# -- config ---------------------------------------------------------------------------------------------------------
def test_config_of_fixture_a(official_tiny_a: Path) -> None:
    cfg = load_config(official_tiny_a)
    assert cfg.vlm_source.endswith("processor/config.json")  # relative vlm_name_or_path resolved at the checkpoint
    assert cfg.text_config["vocab_size"] == cfg.vocab_size == 155697  # overridden from 151936
    assert cfg.hist_token_start_idx == 154669
    assert cfg.expert_text_config()["hidden_size"] == 32 and cfg.expert_text_config()["num_hidden_layers"] == 2
    assert cfg.diffusion.num_inference_steps == 10 and not cfg.tie_word_embeddings


def test_full_config_uses_builtin_qwen3_vl_8b() -> None:
    raw = json.loads((FIXTURES / "alpamayo_r1_full_config.json").read_text())
    vlm, source = resolve_vlm_config(raw["vlm_name_or_path"], None, None)
    assert source == "built-in Qwen/Qwen3-VL-8B-Instruct"
    assert vlm == json.loads((FIXTURES / "qwen3_vl_8b_base_config.json").read_text())


def _raw(official_tiny_a: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((official_tiny_a / "config.json").read_text())


def _vlm(official_tiny_a: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((official_tiny_a / "processor" / "config.json").read_text())


def test_unknown_target_is_named(official_tiny_a: Path) -> None:
    raw = _raw(official_tiny_a)
    raw["diffusion_cfg"]["_target_"] = "alpamayo_r1.diffusion.ddpm.DDPM"
    with pytest.raises(ConfigError, match=r"diffusion: unsupported _target_ 'alpamayo_r1.diffusion.ddpm.DDPM'"):
        parse_config(raw, _vlm(official_tiny_a))


def test_unknown_key_and_model_type(official_tiny_a: Path) -> None:
    raw = _raw(official_tiny_a)
    raw["action_in_proj_cfg"]["dropout"] = 0.1
    with pytest.raises(ConfigError, match="action_in_proj: unsupported key 'dropout'"):
        parse_config(raw, _vlm(official_tiny_a))
    raw = _raw(official_tiny_a)
    raw["model_type"] = "alpamayo1_5"
    with pytest.raises(ConfigError, match="model_type 'alpamayo1_5' is not supported"):
        parse_config(raw, _vlm(official_tiny_a))


def test_expert_must_match_vlm_cache(official_tiny_a: Path) -> None:
    raw = _raw(official_tiny_a)
    raw["expert_cfg"]["num_key_value_heads"] = 1
    with pytest.raises(ConfigError, match="num_key_value_heads=1 must equal the VLM's 2"):
        parse_config(raw, _vlm(official_tiny_a))


def test_missing_vlm_config(tmp_path: Path, official_tiny_a: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    raw = _raw(official_tiny_a)
    raw["vlm_name_or_path"] = "someone/unknown-vlm"
    (ckpt / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="cannot find the base VLM config"):
        load_config(ckpt)
    assert load_config(ckpt, official_tiny_a / "processor").vocab_size == 155697  # explicit dir works


# -- loader ---------------------------------------------------------------------------------------------------------
def test_loads_fixture_a_exactly(model_a, official_tiny_a: Path) -> None:  # type: ignore[no-untyped-def]
    stored = load_file(str(official_tiny_a / "model.safetensors"))
    state = model_a.state_dict()
    assert set(stored) == set(state)
    for key, value in stored.items():
        assert torch.equal(state[key], value.float()), key  # bf16 -> fp32 is exact
    assert not any(t.is_meta for t in state.values())
    assert model_a.language_model.rotary_emb.inv_freq.device.type == "cpu"


def test_missing_unexpected_and_mismatched_keys_are_named(tmp_path: Path, official_tiny_a: Path) -> None:
    tensors = load_file(str(official_tiny_a / "model.safetensors"))
    del tensors["expert.norm.weight"]
    tensors["expert.extra.weight"] = torch.zeros(3)
    tensors["action_out_proj.weight"] = torch.zeros(3, 32)
    ckpt = _copy_checkpoint(official_tiny_a, tmp_path / "bad")
    _save(tensors, ckpt / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(ckpt)
    message = str(err.value)
    assert "missing keys (1): expert.norm.weight" in message
    assert "unexpected keys (1): expert.extra.weight" in message
    assert "action_out_proj.weight: checkpoint [3, 32] vs model [2, 32]" in message


def test_sharded_checkpoint_with_index(tmp_path: Path, official_tiny_a: Path, model_a) -> None:  # type: ignore[no-untyped-def]
    tensors = load_file(str(official_tiny_a / "model.safetensors"))
    ckpt = _copy_checkpoint(official_tiny_a, tmp_path / "sharded")
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for name, shard_keys in shards.items():
        _save({k: tensors[k] for k in shard_keys}, ckpt / name)
        weight_map.update(dict.fromkeys(shard_keys, name))
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    model, report = load_checkpoint(ckpt)
    assert report.files == tuple(shards) and report.num_tensors == len(tensors)
    for key, value in model_a.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_index_naming_a_missing_shard(tmp_path: Path, official_tiny_a: Path) -> None:
    ckpt = _copy_checkpoint(official_tiny_a, tmp_path / "broken")
    (ckpt / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00009.safetensors"}})
    )
    with pytest.raises(CheckpointError, match="do not exist"):
        load_checkpoint(ckpt)


def test_pickle_checkpoints_are_refused(tmp_path: Path, official_tiny_a: Path) -> None:
    ckpt = _copy_checkpoint(official_tiny_a, tmp_path / "pickle")
    (ckpt / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="pickle checkpoints are not loaded"):
        load_checkpoint(ckpt)


def test_tied_embeddings_checkpoint_without_lm_head(tmp_path: Path, official_tiny_a: Path) -> None:
    """Checkpoint B's path: tie_word_embeddings in text_config, no vlm.lm_head.weight in the file."""
    ckpt = _copy_checkpoint(official_tiny_a, tmp_path / "tied")
    vlm = _vlm(official_tiny_a)
    vlm["tie_word_embeddings"] = vlm["text_config"]["tie_word_embeddings"] = True
    (ckpt / "processor" / "config.json").write_text(json.dumps(vlm))
    tensors = load_file(str(official_tiny_a / "model.safetensors"))
    del tensors["vlm.lm_head.weight"]
    _save(tensors, ckpt / "model.safetensors")
    model, _ = load_checkpoint(ckpt)
    assert model.vlm.lm_head.weight is model.language_model.embed_tokens.weight
    assert torch.equal(model.vlm.lm_head.weight, tensors["vlm.model.language_model.embed_tokens.weight"].float())
    # and an lm_head in a tied checkpoint is an unexpected key
    tensors["vlm.lm_head.weight"] = tensors["vlm.model.language_model.embed_tokens.weight"].clone()
    _save(tensors, ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): vlm.lm_head.weight"):
        load_checkpoint(ckpt)


def test_bfloat16_load_keeps_stored_values(official_tiny_a: Path) -> None:
    model, _ = load_checkpoint(official_tiny_a, "cpu", torch.bfloat16)
    assert model.vlm.lm_head.weight.dtype == torch.bfloat16
    assert model.action_space.accel_mean.dtype == torch.bfloat16  # like the official bf16 load
    stored = load_file(str(official_tiny_a / "model.safetensors"))
    assert torch.equal(model.expert.norm.weight, stored["expert.norm.weight"])


# -- full size ------------------------------------------------------------------------------------------------------
def test_full_size_meta_build_matches_manifest() -> None:
    manifest = json.loads((FIXTURES / "alpamayo_r1_full_manifest.json").read_text())
    raw = json.loads((FIXTURES / "alpamayo_r1_full_config.json").read_text())
    vlm = json.loads((FIXTURES / "qwen3_vl_8b_base_config.json").read_text())
    model = build_meta_model(parse_config(raw, vlm), torch.bfloat16)
    mine = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    expected = [(e["key"], e["shape"], e["dtype"]) for e in manifest["keys"]]
    assert sorted(mine) == sorted(expected)
    assert len(mine) == manifest["num_tensors"] == 1166
    assert sum(int(np.prod(s)) for _, s, _ in mine) == manifest["total_numel"]
    non_persistent = {n for n, _ in model.named_buffers()} - set(model.state_dict())
    assert non_persistent == set(manifest["non_persistent_buffers_not_in_state_dict"])


def test_builtin_full_config_equals_the_release_config() -> None:
    from dataclasses import replace

    from alpamayo_ros.model.presets import r1_full_config

    raw = json.loads((FIXTURES / "alpamayo_r1_full_config.json").read_text())
    vlm = json.loads((FIXTURES / "qwen3_vl_8b_base_config.json").read_text())
    parsed = parse_config(raw, vlm)
    assert replace(r1_full_config(), vlm_source=parsed.vlm_source) == parsed


def test_fingerprint_changes_with_values_not_only_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Retrained weights of the same architecture must not share a model_version."""
    import torch
    from safetensors.torch import save_file

    from alpamayo_ros.model.loader import weights_fingerprint

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    save_file({"w": torch.zeros(4, 4)}, str(a / "model.safetensors"))
    save_file({"w": torch.ones(4, 4)}, str(b / "model.safetensors"))
    fa = weights_fingerprint(a, [a / "model.safetensors"])
    fb = weights_fingerprint(b, [b / "model.safetensors"])
    assert fa != fb and len(fa) == 12
    assert fa == weights_fingerprint(a, [a / "model.safetensors"])


def test_derived_vlm_config_merges_nested_overrides_and_leaves_the_base_alone() -> None:
    base = copy.deepcopy(QWEN3_VL_8B_CONFIG)
    vlm = derive_vlm_config(
        base, 1000, {"text_config": {"hidden_size": 64, "rope_scaling": {"mrope_section": [4, 2, 2]}}}
    )
    assert base == QWEN3_VL_8B_CONFIG  # a copy, never the built-in
    text = vlm["text_config"]
    assert text["hidden_size"] == 64 and text["num_hidden_layers"] == 36  # one width changed, the rest kept
    assert text["rope_scaling"] == {"mrope_interleaved": True, "mrope_section": [4, 2, 2], "rope_type": "default"}
    assert vlm["vocab_size"] == text["vocab_size"] == 1000


def test_tiny_preset_is_fixture_a_architecture_with_tied_embeddings(official_tiny_a: Path) -> None:
    from alpamayo_ros.model.presets import tiny_config

    fixture = derive_vlm_config(_vlm(official_tiny_a), 155697)
    tiny = tiny_config().vlm
    untied = {"tie_word_embeddings": False}
    tiny_untied = {**tiny, **untied, "text_config": {**tiny["text_config"], **untied}}
    tiny_untied.pop("dtype")  # the top-level storage dtype (transformers reads text_config's)
    assert tiny_untied == fixture


@pytest.mark.parametrize(
    "name", ["alpamayo_r1_full_manifest.json", "alpamayo_r1_full_config.json", "qwen3_vl_8b_base_config.json"]
)
def test_repository_fixture_copies_equal_the_shared_originals(name: str) -> None:
    import hashlib

    listed = json.loads(shared_fixture("FILES.json").read_text())
    assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == listed[name]["sha256"]
