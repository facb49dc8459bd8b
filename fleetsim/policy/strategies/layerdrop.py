"""``layerdrop``: every device drops blocks with one fixed ratio and schedule (LayerDrop, Fan et al. 2019).

With ``schedule: uniform`` this is LayerDrop as a federated baseline; the other registered schedules of
:mod:`fleetsim.core.schedules` give the other fixed-ratio STLD variants. Two knobs found useful in the
accuracy study (README, "Layer dropout and accuracy"): ``lr_scale`` multiplies the learning rate while
blocks are dropped, and ``anneal_rounds`` lowers the ratio linearly to zero over that many rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from fleetsim.core.rounds import Assignment
from fleetsim.core.schedules import DropoutConfig, ScheduleName
from fleetsim.core.updates import TrainConfig
from fleetsim.policy.configurators.base import Configurator, with_dropout
from fleetsim.policy.strategies.base import STRATEGIES, StrategyContext
from fleetsim.policy.strategies.fedlora import FedLoRA
from fleetsim.spec.schema import Strict
from fleetsim.world.fleet import Device


class LayerDropOptions(Strict):
    ratio: float = Field(0.25, ge=0.0, lt=1.0, description="expected fraction of blocks dropped per step")
    schedule: ScheduleName = "uniform"
    ends: int = Field(1, ge=0, description="keep_ends: blocks always kept at each end")
    cap: float = Field(0.9, gt=0.0, le=1.0, description="depth: largest per-block drop probability")
    lr_scale: float = Field(1.0, gt=0.0, description="learning-rate multiplier while the ratio is above 0")
    anneal_rounds: int | None = Field(None, ge=1, description="ratio falls linearly to 0 over these rounds")

    def dropout(self, ratio: float) -> DropoutConfig:
        return DropoutConfig(ratio=ratio, schedule=self.schedule, ends=self.ends, cap=self.cap)


class RoundRatioConfigurator(Configurator):
    """The same config for every device; the ratio may depend on the round (annealing)."""

    def __init__(self, base: TrainConfig, options: LayerDropOptions):
        self.base = base
        self.options = options

    def ratio(self, round_idx: int) -> float:
        o = self.options
        if o.anneal_rounds is None:
            return o.ratio
        return o.ratio * max(0.0, 1.0 - round_idx / o.anneal_rounds)

    def assign(self, round_idx: int, devices: Sequence[Device], shared: frozenset[str] | None) -> Assignment:
        config = with_dropout(self.base, self.options.dropout(self.ratio(round_idx)), self.options.lr_scale)
        return Assignment({d.id: config for d in devices})


@STRATEGIES.register
class LayerDrop(FedLoRA):
    """One dropout configuration for every device (optionally annealed over rounds); per-block FedAvg."""

    name = "layerdrop"
    Options = LayerDropOptions

    @classmethod
    def dropout_options(cls, options: Strict) -> dict[str, DropoutConfig]:
        assert isinstance(options, LayerDropOptions)
        return {"ratio": options.dropout(options.ratio)}

    @classmethod
    def make_configurator(cls, ctx: StrategyContext, options: Strict) -> Configurator:
        assert isinstance(options, LayerDropOptions)
        return RoundRatioConfigurator(ctx.base_config, options)
