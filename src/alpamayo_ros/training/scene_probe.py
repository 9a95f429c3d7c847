"""An auxiliary training target that makes the vision tower itself see the scene.

The language loss reaches the vision tower only through the decoder, which can also read the ego history; a small
model then learns to guess the cause of a slow-down from its own deceleration (the ego-status shortcut) and barely
uses its cameras. The probe asks the image tokens alone (no history, no text) which evidence the reference label
cites: attention pooling over each sample's image tokens, then one linear layer, trained with a multi-label
cross-entropy. It exists only during training and is not part of the checkpoint; the model's inference path does
not change.

The classes are the label's evidence sentences with their numbers masked ("The traffic light ahead is red and the
stop line is # m away."), read from the training texts, so they follow the label templates without a second list.
A label is evidence sentences + one decision sentence + one action sentence (``sim.labels``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
from torch import nn

_NUMBER = re.compile(r"\d+(\.\d+)?")  # a label that prints "inf" or "nan" stays its own class, visibly
_SENTENCE_END = re.compile(r"(?<=\.)\s+")
DECISION_AND_ACTION = 2  # the last two sentences of every reference label


def evidence_templates(text: str) -> list[str]:
    """The evidence sentences of a reference label (or of a driver's reasoning, which has the same form), numbers
    masked ("The traffic light ahead is red and the stop line is # m away."): what the scene probe learns to name and
    what the proxy evaluation groups ticks by. The first one is the longitudinal decision's cause.

    Raises:
        ValueError: the text has no evidence sentence before its decision and action sentences.
    """
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    if len(sentences) <= DECISION_AND_ACTION:
        raise ValueError(f"not a reference label (needs evidence, decision and action sentences): {text!r}")
    return [_NUMBER.sub("#", s) for s in sentences[:-DECISION_AND_ACTION]]


class SceneVocab:
    """Evidence templates seen in training, and multi-hot targets over them."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.classes = sorted({t for text in texts for t in evidence_templates(text)})
        self._index = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.classes)

    def targets(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, classes) float multi-hot; evidence never seen in training is left out (the probe cannot name it)."""
        out = torch.zeros(len(texts), len(self.classes))
        for row, text in enumerate(texts):
            for template in evidence_templates(text):
                if (col := self._index.get(template)) is not None:
                    out[row, col] = 1.0
        return out


class SceneProbe(nn.Module):
    """Learned-query attention pooling over one sample's image tokens, then a linear multi-label classifier."""

    def __init__(self, hidden: int, classes: int, queries: int = 4) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, hidden) / math.sqrt(hidden))
        self.classify = nn.Linear(queries * hidden, classes)

    def forward(self, image_embeds: torch.Tensor, batch: int) -> torch.Tensor:
        """image_embeds: (batch * tokens, hidden), each sample's tokens contiguous (the collated order)."""
        if image_embeds.shape[0] % batch:
            raise ValueError(f"{image_embeds.shape[0]} image tokens do not split into {batch} samples")
        tokens = image_embeds.reshape(batch, -1, image_embeds.shape[-1]).float()
        weights = torch.softmax(tokens @ self.queries.T / math.sqrt(tokens.shape[-1]), dim=1)  # (B, tokens, Q)
        pooled = torch.einsum("btq,bth->bqh", weights, tokens)
        return self.classify(pooled.flatten(1))  # type: ignore[no-any-return]


def scene_loss(probe: SceneProbe, image_embeds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = probe(image_embeds, targets.shape[0])
    return nn.functional.binary_cross_entropy_with_logits(logits, targets.to(logits.device))
