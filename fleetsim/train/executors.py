"""Executors run a round's delivered updates for real. Updates of a round are independent."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.train.local import LocalTrainer

__all__ = ["Executor", "InlineExecutor"]


class Executor(ABC):
    @abstractmethod
    def run(self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]]) -> list[UpdateResult]:
        """Train ``plans[i]`` from ``states[i]``; results in the order of ``plans``."""


class InlineExecutor(Executor):
    """Trains the updates one after another in this process, on one shared model."""

    def __init__(self, trainer: LocalTrainer):
        self.trainer = trainer

    def run(self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]]) -> list[UpdateResult]:
        return [self.trainer.train(plan, state) for plan, state in zip(plans, states, strict=True)]
