"""What every executor shares: the contract, the recipe a worker builds its trainer from, the order in
which a round's updates are handed out, and the registry (``executor.kind``).

Updates of a round are independent: each trains from its own start state with its own seed, and every
worker holds the same model (loaded from the same files, LoRA and head initialised from the same seed), so
any executor, at any worker count, gives the same results as training them one after another at the same
number of threads per worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from fleetsim.core.registry import Registry
from fleetsim.core.rounds import round_number
from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.spec.scenario import ExecutorSpec, LoraSpec
from fleetsim.train.data import Split
from fleetsim.train.local import LocalTrainer
from fleetsim.train.models import ModelBundle, load_model

__all__ = ["EXECUTORS", "Executor", "ExecutorKind", "TrainerRecipe", "describe_update", "longest_first"]


class Executor(ABC):
    """Trains a round's delivered updates on the host."""

    @abstractmethod
    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        """Train ``plans[i]`` from ``states[i]``; results in the order of ``plans``. ``work[i]`` is the
        update's counted FLOPs (how long it will take, relative to the others). A worker that dies raises
        :class:`~fleetsim.core.errors.WorkerLost` naming the update."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release workers (idempotent)."""


@dataclass(frozen=True)
class TrainerRecipe:
    """Everything a worker needs to build the trainer this process would build (picklable): the model's
    files, its head size and task, LoRA settings and initialisation seed, the tokenized training split, and where
    and how to train."""

    model_path: str
    num_labels: int
    task: str  # classification | causal_lm
    lora: LoraSpec
    init_seed: int
    train: Split
    device: str  # resolved: "cpu" or "cuda"
    precision: str  # "fp32" or "bf16"
    compile: bool = False

    def bundle(self) -> ModelBundle:
        """The model, on ``device``."""
        bundle = load_model(self.model_path, self.num_labels, self.lora, self.init_seed, self.task)
        return bundle.to(torch.device(self.device))

    def trainer(self, bundle: ModelBundle | None = None) -> LocalTrainer:
        """A trainer on ``bundle`` (default: a freshly loaded one)."""
        return LocalTrainer(bundle or self.bundle(), self.train, self.precision, self.compile)


def longest_first(work: Sequence[float]) -> list[int]:
    """Indices of updates by decreasing work (ties by position): handed to whichever worker is free next,
    this is longest-processing-time-first list scheduling (Graham 1969), within 4/3 of the best makespan."""
    return sorted(range(len(work)), key=lambda i: (-work[i], i))


def describe_update(plan: UpdatePlan) -> str:
    return f"the update of device {plan.device_id} in round {round_number(plan.round_idx)}"


@dataclass(frozen=True)
class ExecutorKind:
    """A registered executor. ``build(recipe, local, options)``: ``local`` is this process's trainer (the
    inline executor trains on it; the others leave it to evaluation)."""

    name: str
    build: Callable[[TrainerRecipe, LocalTrainer, ExecutorSpec], Executor]
    needs: str | None = None  # an importable module it needs, and how to get it, checked at load time


EXECUTORS: Registry[ExecutorKind] = Registry("executor")
