"""Offline Qwen3-VL tokenizer vs the fixture's tokenizer.json (itself checked against tiktoken), Alpamayo ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
from tokenizers import Tokenizer

from alpamayo_ros.model.tokenizer import (
    TokenizerError,
    add_alpamayo_tokens,
    build_qwen3vl_tokenizer,
    check_against_config,
    load_tokenizer,
    token_ids,
)

from support import FIXTURES

BROAD_TEXT = [
    "The ego vehicle slows down because a pedestrian is crossing at the crosswalk ahead.",
    "  indented\tcode = {'a': [1, 2, 3]}  # comment\r\n\n\n   trailing   ",
    "数字 12345 和 中文文本，日本語のテキスト、한국어 텍스트 — “quotes” ‘single’ …",
    "emoji 🚗🚦🛑 👩‍👩‍👧 flags 🇩🇪 and math ∑∫√ ≤ ≥ ≠",
    "Ünïcödé NFC/NFD: e\u0301 é A\u030a Å ﬁ ligature",
    "I'm we'LL they'Re it'S DON'T can't 'quoted'",
    "<|im_start|>user\nhello<|im_end|>\n<|vision_start|><|image_pad|><|vision_end|>",
    "x" * 300 + " " + "ab" * 200,
]


def _corpus() -> list[str]:
    """The fixed strings plus ~100 kB of real source and docs text (transformers ships both)."""
    root = Path(transformers.__file__).parent
    texts = list(BROAD_TEXT)
    for name in ("models/qwen3_vl/modeling_qwen3_vl.py", "generation/utils.py", "tokenization_utils_base.py"):
        texts.append((root / name).read_text(encoding="utf-8")[:40_000])
    return texts


def test_builder_reproduces_fixture_tokenizer_json(official_tiny_a: Path) -> None:
    mine = json.loads(build_qwen3vl_tokenizer().to_str())
    ref = json.loads((official_tiny_a / "processor" / "tokenizer.json").read_text())
    assert mine["model"]["vocab"] == ref["model"]["vocab"]
    assert [tuple(m) for m in mine["model"]["merges"]] == [tuple(m) for m in ref["model"]["merges"]]
    for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"):
        assert mine[part] == ref[part], part


def test_same_ids_as_fixture_on_broad_text(official_tiny_a: Path) -> None:
    ref = Tokenizer.from_file(str(official_tiny_a / "processor" / "tokenizer.json"))
    mine = build_qwen3vl_tokenizer()
    total = 0
    for text in _corpus():
        ids = mine.encode(text, add_special_tokens=False).ids
        assert ids == ref.encode(text, add_special_tokens=False).ids
        assert mine.decode(ids, skip_special_tokens=False) == ref.decode(ids, skip_special_tokens=False)
        total += len(ids)
    assert total > 20_000


def test_known_qwen_ids() -> None:
    tok = build_qwen3vl_tokenizer()
    text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    assert tok.encode(text).ids == [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198]
    assert tok.get_vocab_size(with_added_tokens=True) == 151669


def test_alpamayo_ids_match_manifest(tokenizer: Tokenizer) -> None:
    manifest = json.loads((FIXTURES / "alpamayo_r1_full_manifest.json").read_text())
    assert tokenizer.get_vocab_size(with_added_tokens=True) == manifest["vocab_size"] == 155697
    assert tokenizer.token_to_id("<i0>") == manifest["traj_token_start_idx"]
    assert tokenizer.token_to_id("<i3000>") == manifest["hist_token_start_idx"]
    assert tokenizer.token_to_id("<i3999>") == 155668
    for name, expected in manifest["special_token_ids"].items():
        assert tokenizer.token_to_id(f"<|{name}|>") == expected, name
    ids = token_ids(tokenizer)
    assert (ids.traj_future_start, ids.traj_history, ids.cot_start, ids.cot_end) == (155681, 155684, 155677, 155678)


def test_user_tokenizer_dir_is_extended_identically(official_tiny_a: Path, tokenizer: Tokenizer) -> None:
    from_dir = load_tokenizer(official_tiny_a / "processor")
    assert from_dir.get_vocab() == tokenizer.get_vocab()


def test_missing_tokenizer_json_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"no tokenizer\.json"):
        load_tokenizer(tmp_path)


def test_wrong_base_vocabulary_is_rejected() -> None:
    small = Tokenizer.from_str(build_qwen3vl_tokenizer().to_str())
    small.add_tokens(["<extra>"])
    with pytest.raises(TokenizerError, match="expects <i0> at 151669"):
        add_alpamayo_tokens(small, 4000, expected_start=151669)
    extended = add_alpamayo_tokens(small, 4000)
    with pytest.raises(TokenizerError, match="does not match the checkpoint"):
        check_against_config(extended, 155697, 151669, {"history": 155684})
