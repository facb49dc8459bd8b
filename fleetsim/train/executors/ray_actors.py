"""The Ray executor: one Ray actor per worker, each holding one resident model, on a local Ray that
fleetsim starts and stops, or on an existing cluster (``executor.address``).

Actors build their trainer once from the same recipe as the process executor. A round's updates are handed
out longest first: each actor gets one, and whichever finishes first gets the next. Needs the ``ray``
extra (``pip install 'fleetsim[ray]'``); the scenario check says so when Ray is missing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from fleetsim.core.errors import WorkerLost
from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.spec.scenario import ExecutorSpec
from fleetsim.train.executors.base import Executor, TrainerRecipe, describe_update, longest_first
from fleetsim.train.executors.process import default_threads
from fleetsim.train.local import LocalTrainer

__all__ = ["RayExecutor", "build_ray"]


class _Worker:
    """The body of one actor: a resident trainer."""

    def __init__(self, recipe: TrainerRecipe, threads: int):
        torch.set_num_threads(threads)
        self.trainer = recipe.trainer()

    def train(self, plan: UpdatePlan, state: dict[str, torch.Tensor]) -> UpdateResult:
        return self.trainer.train(plan, state)


class RayExecutor(Executor):
    """``workers`` actors with ``threads`` CPUs (torch threads) each."""

    def __init__(self, recipe: TrainerRecipe, workers: int, threads: int, address: str | None):
        import ray

        self.ray = ray
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if address is None:
                # A local Ray starts its workers at nice 15; these do the run's work while this process waits.
                os.environ.setdefault("RAY_worker_niceness", "0")
                ray.init(num_cpus=workers * threads, **options)
            else:
                ray.init(address=address, **options)
        actor = ray.remote(num_cpus=threads)(_Worker)
        recipe_ref = ray.put(recipe)
        self.actors: list[Any] = [actor.remote(recipe_ref, threads) for _ in range(workers)]

    def run(
        self, plans: Sequence[UpdatePlan], states: Sequence[dict[str, torch.Tensor]], work: Sequence[float]
    ) -> list[UpdateResult]:
        ray = self.ray
        queue = longest_first(work)
        free = list(self.actors)
        in_flight: dict[Any, tuple[int, Any]] = {}
        results: dict[int, UpdateResult] = {}
        while queue or in_flight:
            while free and queue:
                i, actor = queue.pop(0), free.pop(0)
                in_flight[actor.train.remote(plans[i], states[i])] = (i, actor)
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            i, actor = in_flight.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                raise WorkerLost(f"a Ray actor died while training {describe_update(plans[i])}") from err
            except ray.exceptions.RayError as err:
                raise WorkerLost(f"a Ray actor failed training {describe_update(plans[i])}: {err}") from err
            free.append(actor)
        return [results[i] for i in range(len(plans))]

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_ray and self.ray.is_initialized():
            self.ray.shutdown()


def build_ray(recipe: TrainerRecipe, local: LocalTrainer, options: ExecutorSpec) -> Executor:
    threads = options.threads_per_worker or default_threads(options.workers)
    return RayExecutor(recipe, options.workers, threads, options.address)
