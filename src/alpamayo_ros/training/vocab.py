"""A small byte-level BPE tokenizer for the Chain-of-Causation vocabulary, laid out like Alpamayo-R1's.

Why small: the real Qwen3 vocabulary (155,697 rows) alone would be ~40 MB of embedding at a tiny width. Here the
base vocabulary is a byte-level BPE trained on the prompt text and the reference-label phrasing (every byte is
still encodable, so no text is ever unknown), followed, in the official order, by the Qwen chat-template specials,
the trajectory-bin tokens ``<i0>``.. and the Alpamayo specials. Ids are looked up by string everywhere, so the
model code needs no hard-coded id.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from alpamayo_ros.model.processor import SYSTEM_PROMPT, USER_INSTRUCTION
from alpamayo_ros.model.tokenizer import ALPAMAYO_SPECIAL_NAMES, QWEN_ADDED_TOKENS, special_token

BASE_VOCAB_SIZE = 640  # 256 byte symbols + merges: enough for every label word to be one token


def label_corpus(num_seeds: int = 60, seconds: float = 20.0) -> list[str]:
    """Reference-label texts of every scenario (ground truth only, no rendering) plus distances 0..199 m."""
    from alpamayo_ros.sim import SCENARIOS, generate

    texts: set[str] = set()
    for name in SCENARIOS:
        for seed in range(num_seeds):
            gen = generate(name, 10_000 + seed, seconds, 64, 64)
            for tick in gen.ticks(render=False):
                texts.add(tick.label.text)
    texts.update(f"is {d} m away. {d} m ahead" for d in range(200))
    return sorted(texts)


def build_tokenizer(corpus: Iterable[str], traj_vocab_size: int, base_vocab_size: int = BASE_VOCAB_SIZE) -> Tokenizer:
    """Train the base BPE on ``corpus`` (+ the prompt text), then add the specials and trajectory bins in order.

    Order (as the official vocabulary): base tokens, Qwen added tokens (``<|endoftext|>`` ... ``</think>``),
    ``<i0>``..``<i{traj_vocab_size-1}>``, then the Alpamayo specials (``<|image_pad|>`` already exists).
    """
    tok = Tokenizer(models.BPE(fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)  # type: ignore[assignment]
    tok.post_processor = processors.ByteLevel(trim_offsets=False)  # type: ignore[assignment]
    tok.decoder = decoders.ByteLevel()  # type: ignore[assignment]
    trainer = trainers.BpeTrainer(
        vocab_size=base_vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    prompt = [SYSTEM_PROMPT, USER_INSTRUCTION, "system\n", "user\n", "assistant\n", "\n"]
    tok.train_from_iterator([*prompt, *corpus], trainer=trainer)
    for content, special in QWEN_ADDED_TOKENS:
        added = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=special)
        if special:
            tok.add_special_tokens([added])
        else:
            tok.add_tokens([added])
    tok.add_tokens([AddedToken(f"<i{i}>", normalized=True, special=False) for i in range(traj_vocab_size)])
    for name in ALPAMAYO_SPECIAL_NAMES:
        content = special_token(name)
        if tok.token_to_id(content) is None:
            tok.add_special_tokens(
                [AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)]
            )
    return tok


def special_ids(tok: Tokenizer) -> dict[str, int]:
    """Ids of the tokens the VLM config and ``traj_token_ids`` name (looked up, never assumed)."""

    def get(content: str) -> int:
        token_id = tok.token_to_id(content)
        if token_id is None:
            raise ValueError(f"tokenizer has no token {content!r}")
        return int(token_id)

    return {
        "image_token_id": get("<|image_pad|>"),
        "video_token_id": get("<|video_pad|>"),
        "vision_start_token_id": get("<|vision_start|>"),
        "vision_end_token_id": get("<|vision_end|>"),
        "bos_token_id": get("<|endoftext|>"),
        "eos_token_id": get("<|im_end|>"),
        "traj_token_start_idx": get("<i0>"),
        "future": get(special_token("traj_future")),
        "future_end": get(special_token("traj_future_end")),
        "future_start": get(special_token("traj_future_start")),
        "history": get(special_token("traj_history")),
        "history_end": get(special_token("traj_history_end")),
        "history_start": get(special_token("traj_history_start")),
    }
