"""``fedlora``: vanilla federated LoRA — every device trains all blocks; FedAvg over LoRA and head.

:class:`FedLoRA` implements every hook of the round contract and is the base the other strategies
override: the scenario's selector among the devices the configurator can train, the configurator's configs,
every tensor shared, per-block FedAvg weighted by samples × the steps each block was trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fleetsim.core.rounds import Aggregate, Assignment, RoundExtras, RoundFeedback
from fleetsim.core.state import StateDict
from fleetsim.core.updates import UpdateResult
from fleetsim.policy.aggregation import block_fedavg
from fleetsim.policy.configurators.base import Configurator, FixedConfigurator
from fleetsim.policy.selection import SelectionInput
from fleetsim.policy.strategies.base import STRATEGIES, Strategy, StrategyContext, Tensors
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device

__all__ = ["FedLoRA"]


@STRATEGIES.register
class FedLoRA(Strategy):
    """The scenario's selector, the scenario's config for every device, sample-weighted per-block FedAvg."""

    name = "fedlora"

    @classmethod
    def make_configurator(cls, ctx: StrategyContext, options: Strict) -> Configurator:
        return FixedConfigurator(ctx.base_config, ctx.cost_model, ctx.shard_sizes)

    def select(
        self, round_idx: int, available: Sequence[Device], k: int, rng: np.random.Generator | None = None
    ) -> list[Device]:
        """The selector's choice among the available devices the configurator can train (id order kept),
        with the expected time of each one's fastest feasible update."""
        candidates = [d for d in available if self.configurator.can_train(d)]
        shared = self.shared_names(round_idx)
        problem = SelectionInput(
            round_idx,
            candidates,
            k,
            lambda d: self.configurator.fastest_s(d, shared),
            self.ctx.deadline_s,
            self.ctx.streams.generator("selection", round_idx) if rng is None else rng,
        )
        return self.selector.select(problem)

    def configure(self, round_idx: int, devices: Sequence[Device]) -> Assignment:
        """The configurator's configs, each exchanging the round's shared tensors."""
        shared = self.shared_names(round_idx)
        assignment = self.configurator.assign(round_idx, devices, shared)
        configs = {
            d: config if config.shared == shared else replace(config, shared=shared)
            for d, config in assignment.configs.items()
        }
        return Assignment(configs, assignment.round_columns)

    def shared_names(self, round_idx: int) -> frozenset[str] | None:
        """Names of the trainable tensors exchanged with the server in ``round_idx`` (None: all of them)."""
        return None

    def start_state(self, device_id: int, global_state: Tensors) -> Tensors:
        return global_state

    def aggregate(self, round_idx: int, global_state: Tensors, results: Sequence[UpdateResult]) -> Aggregate:
        if not results:
            return Aggregate(global_state)
        return Aggregate(block_fedavg(global_state, results, self.ctx.block_of))

    def eval_state(self, global_state: Tensors) -> Tensors:
        return global_state

    def device_state(self, device_id: int, global_state: Tensors) -> Tensors:
        return global_state

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        self.selector.observe(feedback)
        return self.configurator.observe(feedback)

    def state_dict(self) -> StateDict:
        return {"configurator": self.configurator.state_dict(), "selector": self.selector.state_dict()}

    def load_state_dict(self, state: StateDict) -> None:
        self.configurator.load_state_dict(state["configurator"])
        self.selector.load_state_dict(state["selector"])
