"""``layerdrop``: every device drops blocks with one fixed ratio and schedule (LayerDrop, Fan et al. 2019).

With ``schedule: uniform`` this is LayerDrop as a federated baseline; ``depth``, ``exact_k`` and
``keep_ends`` give the other fixed-ratio STLD variants of :mod:`fleetsim.stld`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from fleetsim.configurators import Configurator, FixedConfigurator
from fleetsim.schema import Strict
from fleetsim.stld import DropoutConfig
from fleetsim.strategies.base import Strategy, register_strategy


class LayerDropOptions(Strict):
    ratio: float = Field(0.25, ge=0.0, lt=1.0, description="expected fraction of blocks dropped per step")
    schedule: Literal["uniform", "depth", "exact_k", "keep_ends"] = "uniform"
    ends: int = Field(1, ge=0, description="keep_ends: blocks always kept at each end")
    cap: float = Field(0.9, gt=0.0, le=1.0, description="depth: largest per-block drop probability")


@register_strategy
class LayerDrop(Strategy):
    """One fixed dropout configuration for every device and round; per-block FedAvg."""

    name = "layerdrop"
    Options = LayerDropOptions

    def make_configurator(self) -> Configurator:
        o = self.options
        assert isinstance(o, LayerDropOptions)
        dropout = DropoutConfig(ratio=o.ratio, schedule=o.schedule, ends=o.ends, cap=o.cap)
        return FixedConfigurator(replace(self.ctx.base_config, dropout=dropout))
