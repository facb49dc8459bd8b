"""Configurators: assign each selected device its :class:`~fleetsim.core.updates.TrainConfig` for a round.

A configurator sees the devices selected for a round (and which tensors travel) and returns one config per
device; after the round it observes what happened (simulated times, outcomes, training losses, evaluation)
so an online policy can learn. Whatever it learns across rounds is in ``state_dict``. The fixed
configurator gives every device the same configuration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace

from fleetsim.core.rounds import Assignment, RoundExtras, RoundFeedback
from fleetsim.core.schedules import DropoutConfig
from fleetsim.core.state import StateDict
from fleetsim.core.updates import TrainConfig
from fleetsim.world.fleet import Device

__all__ = ["Configurator", "FixedConfigurator", "with_dropout"]


def with_dropout(base: TrainConfig, dropout: DropoutConfig, lr_scale: float = 1.0) -> TrainConfig:
    """``base`` with ``dropout``; the learning rate is multiplied by ``lr_scale`` when the ratio is above 0
    (a thinned network tolerates a larger step: README, "Layer dropout and accuracy")."""
    return replace(base, dropout=dropout, lr=base.lr * (lr_scale if dropout.ratio > 0 else 1.0))


class Configurator(ABC):
    """Maps (round, selected devices, shared tensors) to per-device training configs."""

    @abstractmethod
    def assign(self, round_idx: int, devices: Sequence[Device], shared: frozenset[str] | None) -> Assignment:
        """One config per device id in ``devices``; ``shared`` names the tensors that travel (None: all)."""

    def can_train(self, device: Device) -> bool:
        """Whether some configuration this configurator may assign fits ``device`` (default: yes)."""
        return True

    def observe(self, feedback: RoundFeedback) -> RoundExtras:
        """Learn from a finished round; return what to record (default: nothing)."""
        return RoundExtras()

    def state_dict(self) -> StateDict:
        """What the configurator carries across rounds (default: nothing)."""
        return {}

    def load_state_dict(self, state: StateDict) -> None:
        """Restore :meth:`state_dict`'s output."""
        return None


class FixedConfigurator(Configurator):
    """Every device gets the same configuration, every round."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def assign(self, round_idx: int, devices: Sequence[Device], shared: frozenset[str] | None) -> Assignment:
        return Assignment({d.id: self.config for d in devices})
