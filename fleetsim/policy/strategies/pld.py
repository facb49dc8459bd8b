"""``pld``: Progressive Layer Dropping (Zhang & He, NeurIPS 2020) as a federated baseline.

The keep ratio decays over rounds from 1 towards θ̄, deeper blocks dropped more (see :mod:`fleetsim.core.dropout`);
every device follows the same schedule.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from fleetsim.core.dropout import DropoutConfig
from fleetsim.policy.configurators.base import Configurator, FixedConfigurator
from fleetsim.policy.strategies.base import Strategy, register_strategy
from fleetsim.spec.schema import Strict


class PLDOptions(Strict):
    ratio: float = Field(0.5, gt=0.0, lt=1.0, description="drop ratio the schedule tends to (θ̄ = 1 − 2Ld/(L+1))")
    gamma: float = Field(0.1, gt=0.0, description="decay rate of θ per round")


@register_strategy
class PLD(Strategy):
    name = "pld"
    Options = PLDOptions

    def make_configurator(self) -> Configurator:
        o = self.options
        assert isinstance(o, PLDOptions)
        limit = (self.ctx.n_blocks + 1) / (2 * self.ctx.n_blocks)
        if o.ratio > limit:
            raise ValueError(f"pld ratio {o.ratio} above the reachable {limit:.3f} for {self.ctx.n_blocks} blocks")
        dropout = DropoutConfig(ratio=o.ratio, schedule="pld", pld_gamma=o.gamma)
        return FixedConfigurator(replace(self.ctx.base_config, dropout=dropout))
