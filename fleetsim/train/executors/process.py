"""The process executor: a local pool of worker processes (spawned), each holding one resident model.

A worker builds its trainer once, when it starts (model, LoRA, tokenized training split), then trains the
updates it is sent and returns their trainable tensors. A round's updates are queued longest first, and
each free worker takes the next one. A worker that dies breaks the pool: the round's updates fail with
:class:`~fleetsim.core.errors.WorkerLost` naming the first update lost, and the pool is rebuilt on the next
round (a resumed run).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch

from fleetsim.core.errors import WorkerLost
from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.spec.scenario import ExecutorSpec
from fleetsim.train.executors.base import Executor, TrainerRecipe, describe_update, longest_first
from fleetsim.train.local import LocalTrainer

__all__ = ["ProcessExecutor", "build_process", "default_threads"]

_TRAINER: LocalTrainer | None = None  # the worker process's trainer (set by _start_worker)


def _start_worker(recipe: TrainerRecipe, threads: int) -> None:
    global _TRAINER
    torch.set_num_threads(threads)
    _TRAINER = recipe.trainer()


def _ready() -> int:
    return os.getpid()


def _train(plan: UpdatePlan, state: dict[str, torch.Tensor]) -> UpdateResult:
    assert _TRAINER is not None, "worker started without a trainer"
    return _TRAINER.train(plan, state)


def default_threads(workers: int) -> int:
    """Torch threads per worker when the scenario does not say: the CPUs shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // workers)


class ProcessExecutor(Executor):
    """``workers`` spawned processes with ``threads`` torch threads each."""

    def __init__(self, recipe: TrainerRecipe, workers: int, threads: int):
        self.recipe, self.workers, self.threads = recipe, workers, threads
        self.pool: ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_start_worker, initargs=(self.recipe, self.threads)
        )
        self.ready = [self.pool.submit(_ready) for _ in range(self.workers)]  # start every worker now

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (once they have started)."""
        return [future.result() for future in self.ready]

    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        if self.pool is None:
            self._start()
        assert self.pool is not None
        futures: dict[int, Future[UpdateResult]] = {}
        for i in longest_first(work):
            futures[i] = self.pool.submit(_train, plans[i], states[i])
        results: list[UpdateResult] = []
        for i in range(len(plans)):
            try:
                results.append(futures[i].result())
            except BrokenProcessPool as err:
                self.close()
                raise WorkerLost(f"a worker process died while training {describe_update(plans[i])}") from err
            except Exception as err:
                self.close()
                raise WorkerLost(f"a worker process failed training {describe_update(plans[i])}: {err}") from err
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def build_process(recipe: TrainerRecipe, local: LocalTrainer, options: ExecutorSpec) -> Executor:
    threads = options.threads_per_worker or default_threads(options.workers)
    return ProcessExecutor(recipe, options.workers, threads)
