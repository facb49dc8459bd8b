"""The result of evaluating a model: a plain value, so bandit and reward code never import torch."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvalResult"]


@dataclass(frozen=True)
class EvalResult:
    """Accuracy and mean cross-entropy of one model on ``n_examples`` held-out examples."""

    accuracy: float
    loss: float  # mean cross-entropy
    n_examples: int
