"""What the model learns to predict: a class per example, or the next token at every position.

An objective says which targets a batch trains on and how a batch of logits is scored. ``classification``:
one label per example (a sequence-classification head), cross-entropy and accuracy over examples.
``causal_lm``: next-token prediction on the example's own tokens (the language-model head; the model shifts
targets by one position itself, padding positions are ignored as ``-100``), cross-entropy and token accuracy
over the predicted tokens, and perplexity = exp(mean token cross-entropy) (Jelinek et al. 1977; as
FlowerTune's and EdgeFlowerTune's federated LLM fine-tuning reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from fleetsim.train.data import Split

__all__ = ["CAUSAL_LM", "CLASSIFICATION", "IGNORE_INDEX", "TASKS", "BatchScore", "Objective", "TaskName", "objective"]

TaskName = Literal["classification", "causal_lm"]
TASKS: tuple[TaskName, ...] = ("classification", "causal_lm")
IGNORE_INDEX = -100  # the target torch's cross-entropy (and Hugging Face's causal-LM loss) skips


@dataclass(frozen=True)
class BatchScore:
    """Summed cross-entropy, correct predictions and predictions counted, of one batch."""

    loss_sum: float
    correct: int
    count: int


@dataclass(frozen=True)
class Objective:
    """The training targets and evaluation scores of one task."""

    task: TaskName

    @property
    def causal(self) -> bool:
        return self.task == "causal_lm"

    def targets(self, split: Split, rows: torch.Tensor, seq_len: int) -> torch.Tensor:
        """What ``model(..., labels=…)`` trains on for ``rows`` of ``split`` at ``seq_len`` tokens: their
        labels (N,), or their own tokens (N, T) with padding as :data:`IGNORE_INDEX`."""
        if not self.causal:
            return split.labels[rows]
        ids = split.input_ids[rows, :seq_len]
        return ids.masked_fill(split.attention_mask[rows, :seq_len] == 0, IGNORE_INDEX)

    def score(self, logits: torch.Tensor, targets: torch.Tensor) -> BatchScore:
        """Score ``logits`` against :meth:`targets` (summed, so batches add up)."""
        if self.causal:  # position t predicts token t + 1
            logits, targets = logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten()
            keep = targets != IGNORE_INDEX
            logits, targets = logits[keep], targets[keep]
        loss = F.cross_entropy(logits.float(), targets, reduction="sum")
        return BatchScore(float(loss), int((logits.argmax(-1) == targets).sum()), int(targets.numel()))

    def perplexity(self, mean_loss: float) -> float | None:
        """exp(mean token cross-entropy) for a language model; None for a classifier."""
        return math.exp(mean_loss) if self.causal else None


CLASSIFICATION = Objective("classification")
CAUSAL_LM = Objective("causal_lm")


def objective(task: str) -> Objective:
    """The objective of ``task`` (one of :data:`TASKS`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return CAUSAL_LM if task == "causal_lm" else CLASSIFICATION
