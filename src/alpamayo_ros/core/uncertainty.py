"""How unsure the model was of its own reasoning: a live signal beside reasoning/trajectory agreement.

Agreement checks that the trajectory does what the reasoning says; it cannot catch a consistent misreading (the model
says "the lane is clear" about a red light and drives on, in agreement). The reasoning's token probabilities can:
a model that misreads a scene it was not trained on tends to hesitate over the words that carry its reading.

``reasoning_uncertainty`` is 1 - the geometric mean of the generated reasoning tokens' probabilities (under the
model's own distribution at temperature 1), in [0, 1]: 0 when the model was sure of every token, larger the more
probability mass it spread over other words. NaN when the backend does not report token probabilities (the
CUDA-graph decode loop, TensorRT/ONNX reasoning engines).
"""

from __future__ import annotations

import math

import numpy as np

from alpamayo_ros.core.types import FloatArray, Prediction


def reasoning_uncertainty(token_logprobs: FloatArray | None) -> float:
    """1 - exp(mean log-probability) of the generated tokens (natural logs); NaN without tokens.

    The mean, not the minimum: reasoning texts also carry numbers (distances, speeds) the model is rightly unsure
    about token by token, and one such digit should not mark a plan uncertain.
    """
    if token_logprobs is None or len(token_logprobs) == 0:
        return math.nan
    return float(1.0 - np.exp(np.mean(token_logprobs)))


def sample_uncertainty(prediction: Prediction, sample_index: int) -> float:
    """``reasoning_uncertainty`` of one trajectory sample's reasoning."""
    logprobs = prediction.token_logprobs
    return reasoning_uncertainty(logprobs[sample_index] if logprobs is not None else None)
