"""The strategy ABC: which devices train, with which config, and how their updates are combined.

Modelled on Flower's ``Strategy``: small, the round number first, delivered results passed in and lost
updates known from the records. The default hooks give plain federated LoRA (uniform selection, one
fixed config, FedAvg weighted by samples × the steps each block was trained).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.feedback import RoundExtras, RoundFeedback
from fleetsim.core.rng import Streams
from fleetsim.core.updates import TrainConfig, UpdateResult
from fleetsim.costs.cost_model import CostModel
from fleetsim.policy.aggregation import block_fedavg
from fleetsim.policy.configurators.base import Configurator, FixedConfigurator
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device, Fleet

__all__ = ["STRATEGIES", "NoOptions", "Strategy", "StrategyContext", "register_strategy"]


class NoOptions(Strict):
    """A strategy without options."""


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may use to decide: the scenario's base config, the fleet, costs and random streams."""

    base_config: TrainConfig
    fleet: Fleet
    cost_model: CostModel
    streams: Streams
    block_of: dict[str, int | None]  # trainable tensor name → block index (None: head)
    n_blocks: int
    evaluate: Callable[[dict[str, torch.Tensor]], EvalResult] | None = None  # for strategies that run trials


STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make ``cls`` selectable by its ``name``."""
    STRATEGIES[cls.name] = cls
    return cls


class Strategy:
    """Federated LoRA by default; subclasses override the hooks they change."""

    name: ClassVar[str] = "base"
    Options: ClassVar[type[Strict]] = NoOptions

    def __init__(self, ctx: StrategyContext, options: Strict):
        self.ctx = ctx
        self.options = options
        self.configurator: Configurator = self.make_configurator()

    def make_configurator(self) -> Configurator:
        return FixedConfigurator(self.ctx.base_config)

    def select(self, round_idx: int, available: Sequence[Device], k: int) -> list[Device]:
        """``k`` devices drawn uniformly without replacement from ``available`` (id order kept)."""
        rng: np.random.Generator = self.ctx.streams.generator("selection", round_idx)
        if len(available) <= k:
            return list(available)
        picked = np.sort(rng.choice(len(available), size=k, replace=False))
        return [available[i] for i in picked]

    def configure(self, round_idx: int, devices: Sequence[Device]) -> dict[int, TrainConfig]:
        return self.configurator.assign(round_idx, devices)

    def aggregate(
        self, round_idx: int, global_state: dict[str, torch.Tensor], results: Sequence[UpdateResult]
    ) -> dict[str, torch.Tensor]:
        if not results:
            return global_state
        return block_fedavg(global_state, results, self.ctx.block_of)

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        return self.configurator.observe(feedback)

    # Personalization hooks (PTLS overrides them): which tensors travel and what each device starts from.

    def shared_names(self) -> frozenset[str] | None:
        """Names of the trainable tensors exchanged with the server (None: all of them)."""
        return None

    def start_state(
        self, round_idx: int, device_id: int, global_state: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The state a device starts its update from."""
        return global_state

    def device_state(self, device_id: int, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model a device would use for inference now (personalized accuracy)."""
        return global_state

    def eval_state(self, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model whose accuracy is reported as the global accuracy."""
        return global_state

    def close(self) -> None:
        """Release resources (personal-state stores)."""
