"""Configurators: assign each selected device its :class:`~fleetsim.updates.TrainConfig` for a round.

A configurator sees the devices selected for a round and returns one config per device; after the round
it observes what happened (simulated times, outcomes, training losses, evaluation) so an online policy
can learn. Bandit policies (DropPEFT) plug in here; the fixed configurator gives every device the
scenario's configuration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from fleetsim.evaluation import EvalResult
from fleetsim.fleet import Device
from fleetsim.updates import TrainConfig, UpdateRecord, UpdateResult

__all__ = ["Configurator", "FixedConfigurator", "RoundFeedback"]


@dataclass(frozen=True)
class RoundFeedback:
    """What a configurator may learn from a finished round."""

    round_idx: int
    start_s: float
    end_s: float
    records: Sequence[UpdateRecord]
    results: Sequence[UpdateResult]
    evaluation: EvalResult | None


class Configurator(ABC):
    """Maps (round, selected devices) to per-device training configs."""

    @abstractmethod
    def assign(self, round_idx: int, devices: Sequence[Device]) -> dict[int, TrainConfig]:
        """One config per device id in ``devices``."""

    def observe(self, feedback: RoundFeedback) -> None:  # noqa: B027 - optional hook
        """Learn from a finished round (default: nothing)."""


class FixedConfigurator(Configurator):
    """Every device gets the same configuration, every round."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def assign(self, round_idx: int, devices: Sequence[Device]) -> dict[int, TrainConfig]:
        return {d.id: self.config for d in devices}
