"""Executors run a round's delivered updates for real; they are registered by name (``executor.kind``).

Updates of a round are independent: each trains from its own start state with its own seed, so any
executor gives the same results as training them one after another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from fleetsim.core.registry import Registry
from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.train.local import LocalTrainer

__all__ = ["EXECUTORS", "Executor", "ExecutorKind", "InlineExecutor"]


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


@dataclass(frozen=True)
class ExecutorKind:
    name: str
    build: Callable[[LocalTrainer], Executor]


EXECUTORS: Registry[ExecutorKind] = Registry("executor")
EXECUTORS.register(ExecutorKind("inline", InlineExecutor))
