"""The result of evaluating a model: a plain value, so bandit and reward code never import torch."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvalResult"]


@dataclass(frozen=True)
class EvalResult:
    """Accuracy and mean cross-entropy of one model on ``n_examples`` held-out examples. For a language model
    accuracy and loss are per predicted token (next-token accuracy, mean token cross-entropy), ``n_examples``
    counts the tokens scored, and ``perplexity`` is exp(loss); a classifier has no perplexity."""

    accuracy: float
    loss: float  # mean cross-entropy
    n_examples: int
    perplexity: float | None = None
