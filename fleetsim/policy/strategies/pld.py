"""``pld``: Progressive Layer Dropping (Zhang & He, NeurIPS 2020) as a federated baseline.

The keep ratio decays over rounds from 1 towards θ̄, deeper blocks dropped more (the ``pld`` schedule of
:mod:`fleetsim.core.schedules`); every device follows the same schedule. A ratio the model's depth cannot
reach is rejected when the scenario loads.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from fleetsim.core.schedules import DropoutConfig
from fleetsim.policy.configurators.base import Configurator, FixedConfigurator
from fleetsim.policy.strategies.base import STRATEGIES, StrategyContext
from fleetsim.policy.strategies.fedlora import FedLoRA
from fleetsim.spec.schema import Strict


class PLDOptions(Strict):
    ratio: float = Field(0.5, gt=0.0, lt=1.0, description="drop ratio the schedule tends to (θ̄ = 1 − 2Ld/(L+1))")
    gamma: float = Field(0.1, gt=0.0, description="decay rate of θ per round")


@STRATEGIES.register
class PLD(FedLoRA):
    """Progressive layer dropping: a dropout ratio rising over rounds, deeper blocks dropped more."""

    name = "pld"
    Options = PLDOptions

    @classmethod
    def dropout_options(cls, options: Strict) -> dict[str, DropoutConfig]:
        assert isinstance(options, PLDOptions)
        return {"ratio": DropoutConfig(ratio=options.ratio, schedule="pld", pld_gamma=options.gamma)}

    @classmethod
    def make_configurator(cls, ctx: StrategyContext, options: Strict) -> Configurator:
        return FixedConfigurator(
            replace(ctx.base_config, dropout=cls.dropout_options(options)["ratio"]), ctx.cost_model, ctx.shard_sizes
        )
