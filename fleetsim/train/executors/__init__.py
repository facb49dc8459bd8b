"""Executors run a round's delivered updates for real; they are registered by name (``executor.kind``):

- ``inline``: one after another in this process;
- ``process``: a local pool of spawned worker processes, one resident model each;
- ``ray``: Ray actors, one resident model each, on a local Ray or an existing cluster.
"""

from __future__ import annotations

from fleetsim.train.executors.base import (
    EXECUTORS,
    Executor,
    ExecutorKind,
    TrainerRecipe,
    describe_update,
    longest_first,
)
from fleetsim.train.executors.inline import InlineExecutor, build_inline
from fleetsim.train.executors.process import ProcessExecutor, build_process
from fleetsim.train.executors.ray_actors import RayExecutor, build_ray

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorKind",
    "InlineExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "TrainerRecipe",
    "describe_update",
    "longest_first",
]

EXECUTORS.register(ExecutorKind("inline", build_inline))
EXECUTORS.register(ExecutorKind("process", build_process))
EXECUTORS.register(ExecutorKind("ray", build_ray, needs="ray"))
