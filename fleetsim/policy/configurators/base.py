"""Configurators: assign each selected device its :class:`~fleetsim.core.updates.TrainConfig` for a round.

A configurator sees the devices selected for a round and returns one config per device; after the round
it observes what happened (simulated times, outcomes, training losses, evaluation) so an online policy
can learn. Bandit policies (DropPEFT) plug in here; the fixed configurator gives every device the
scenario's configuration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace

from fleetsim.core.dropout import DropoutConfig
from fleetsim.core.feedback import RoundExtras, RoundFeedback
from fleetsim.core.updates import TrainConfig
from fleetsim.world.fleet import Device

__all__ = ["Configurator", "FixedConfigurator", "RoundExtras", "RoundFeedback", "with_dropout"]


def with_dropout(base: TrainConfig, dropout: DropoutConfig, lr_scale: float = 1.0) -> TrainConfig:
    """``base`` with ``dropout``; the learning rate is multiplied by ``lr_scale`` when the ratio is above 0
    (a thinned network tolerates a larger step: README, "Layer dropout and accuracy")."""
    return replace(base, dropout=dropout, lr=base.lr * (lr_scale if dropout.ratio > 0 else 1.0))


class Configurator(ABC):
    """Maps (round, selected devices) to per-device training configs."""

    @abstractmethod
    def assign(self, round_idx: int, devices: Sequence[Device]) -> dict[int, TrainConfig]:
        """One config per device id in ``devices``."""

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        """Learn from a finished round; return what to record (default: nothing)."""
        return RoundExtras()

    def probe_examples(self) -> int:
        """How many of a device's examples to score before/after its update (for rewards); 0: none."""
        return 0


class FixedConfigurator(Configurator):
    """Every device gets the same configuration, every round."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def assign(self, round_idx: int, devices: Sequence[Device]) -> dict[int, TrainConfig]:
        return {d.id: self.config for d in devices}
