"""The inline executor: updates trained one after another in this process, on one resident model."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.spec.scenario import ExecutorSpec
from fleetsim.train.executors.base import Executor, TrainerRecipe
from fleetsim.train.local import LocalTrainer

__all__ = ["InlineExecutor", "build_inline"]


class InlineExecutor(Executor):
    """Trains the updates one after another in this process, on one shared model."""

    def __init__(self, trainer: LocalTrainer):
        self.trainer = trainer

    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        return [self.trainer.train(plan, state) for plan, state in zip(plans, states, strict=True)]


def build_inline(recipe: TrainerRecipe, local: LocalTrainer, options: ExecutorSpec) -> Executor:
    """``threads_per_worker`` (if set) becomes this process's torch thread count."""
    if options.threads_per_worker is not None:
        torch.set_num_threads(options.threads_per_worker)
    return InlineExecutor(local)
