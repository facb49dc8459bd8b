"""Optimizers, registered by name (``training.optimizer.name``): how to build one, and how much state it keeps.

A fresh optimizer is built for every client update (devices keep no optimizer state across rounds). The
cost model reads ``state_tensors`` — copies of each trainable tensor the optimizer keeps — for peak memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from fleetsim.core.registry import Registry

__all__ = ["OPTIMIZERS", "Optimizer"]


@dataclass(frozen=True)
class Optimizer:
    name: str
    state_tensors: int  # per trainable tensor: AdamW keeps 2 moments (Loshchilov & Hutter 2019), SGD none
    build: Callable[[Iterable[torch.nn.Parameter], float, float], torch.optim.Optimizer]  # (params, lr, wd)


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")
OPTIMIZERS.register(
    Optimizer("adamw", 2, lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd)),
)
OPTIMIZERS.register(
    Optimizer("sgd", 0, lambda params, lr, wd: torch.optim.SGD(params, lr=lr, weight_decay=wd)),
)
