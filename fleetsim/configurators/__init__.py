"""Configurators: assign each selected device its :class:`~fleetsim.updates.TrainConfig` for a round.

A configurator sees the devices selected for a round and returns one config per device; after the round
it observes what happened (simulated times, outcomes, training losses, evaluation) so an online policy
can learn. Bandit policies (DropPEFT) plug in here; the fixed configurator gives every device the
scenario's configuration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from fleetsim.evaluation import EvalResult
from fleetsim.fleet import Device
from fleetsim.stld import DropoutConfig
from fleetsim.updates import TrainConfig, UpdateRecord, UpdateResult

__all__ = ["Configurator", "FixedConfigurator", "RoundExtras", "RoundFeedback", "with_dropout"]


def with_dropout(base: TrainConfig, dropout: DropoutConfig, lr_scale: float = 1.0) -> TrainConfig:
    """``base`` with ``dropout``; the learning rate is multiplied by ``lr_scale`` when the ratio is above 0
    (a thinned network tolerates a larger step: README, "Layer dropout and accuracy")."""
    return replace(base, dropout=dropout, lr=base.lr * (lr_scale if dropout.ratio > 0 else 1.0))


@dataclass(frozen=True)
class RoundFeedback:
    """What a configurator may learn from a finished round."""

    round_idx: int
    start_s: float
    end_s: float
    records: Sequence[UpdateRecord]
    results: Sequence[UpdateResult]
    evaluation: EvalResult | None


@dataclass
class RoundExtras:
    """What a strategy/configurator adds to the run's tables for a round.

    ``update_columns``: device id → extra columns of its ``updates.parquet`` row; ``round_columns``: extra
    columns of the ``rounds.parquet`` row; ``tables``: rows of extra tables (``<name>.parquet``).
    """

    update_columns: dict[int, dict[str, object]] = field(default_factory=dict)
    round_columns: dict[str, object] = field(default_factory=dict)
    tables: dict[str, list[dict[str, object]]] = field(default_factory=dict)


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
