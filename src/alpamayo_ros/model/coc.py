"""Chain-of-Causation text from generated ids.

Official rule (``extract_between_special_tokens``): decode with special tokens kept, cut at the first
``<|cot_end|>``, take what follows the last ``<|cot_start|>`` before it, strip; no ``<|cot_end|>`` -> "". The
prompt ends with ``<|cot_start|>``, so the generation alone starts inside the CoC. For display, a reasoning cut by
the token budget is returned as the partial text (``complete`` False) instead of the official empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenizers import Tokenizer

COT_START = "<|cot_start|>"
COT_END = "<|cot_end|>"
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")


@dataclass(frozen=True)
class Reasoning:
    text: str
    complete: bool  # <|cot_end|> was generated


def extract_between(decoded: str, name: str) -> str:
    """Text between ``<|{name}_start|>`` and ``<|{name}_end|>`` with the official semantics ("" without an end)."""
    start, end = f"<|{name}_start|>", f"<|{name}_end|>"
    before_end, sep, _ = decoded.partition(end)
    if not sep:
        return ""
    i = before_end.rfind(start)
    return (before_end[i + len(start) :] if i != -1 else before_end).strip()


def reasoning_from_ids(tokenizer: Tokenizer, generated: list[int]) -> Reasoning:
    """CoC of one row of generated ids (the prompt's trailing ``<|cot_start|>`` implied)."""
    decoded = COT_START + tokenizer.decode(generated, skip_special_tokens=False)
    text = extract_between(decoded, "cot")
    if COT_END in decoded:
        return Reasoning(text=text, complete=True)
    partial = decoded[len(COT_START) :].split("<|traj_future_start|>")[0]
    return Reasoning(text=_SPECIAL.sub("", partial).strip(), complete=False)
