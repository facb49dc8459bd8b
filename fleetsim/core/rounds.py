"""The round contract's value types: what a strategy assigns and aggregates, what a finished round feeds
back, and what the strategy adds to the run's tables.

A strategy's hooks return these values instead of keeping per-round fields for a later hook to read, so a
round is a pure function of (strategy state, inputs) → (outputs, new strategy state).

Rounds are known two ways. Inside fleetsim a round is its 0-based index, ``round_idx``: random streams keyed by
(seed, round, device), schedules over rounds (PLD's θ(t), annealing, Oort's exploration) and checkpoints use it.
Whatever a user reads — the ``round`` column of every table, ``summary.json``, messages — carries the round's
1-based number (round 1 is the first, as in Flower and FedScale), and :func:`round_number` is the one place that
turns an index into a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateRecord, UpdateResult

if TYPE_CHECKING:
    import torch

__all__ = ["Aggregate", "Assignment", "RoundExtras", "RoundFeedback", "round_number"]

Columns = dict[str, object]


def round_number(round_idx: int) -> int:
    """The number users see for the round with 0-based index ``round_idx``: round 1 is the first."""
    return round_idx + 1


@dataclass(frozen=True)
class Assignment:
    """A round's training configurations, one per selected device id, and columns for ``rounds.parquet``."""

    configs: dict[int, TrainConfig]
    round_columns: Columns = field(default_factory=dict)


@dataclass(frozen=True)
class Aggregate:
    """The global trainable state after a round's aggregation, and columns for ``rounds.parquet``."""

    global_state: dict[str, torch.Tensor]
    round_columns: Columns = field(default_factory=dict)


@dataclass(frozen=True)
class RoundFeedback:
    """What a strategy may learn from a finished round."""

    round_idx: int
    start_s: float
    end_s: float
    records: Sequence[UpdateRecord]  # every selected update, in selection order
    plans: Mapping[int, UpdatePlan]  # device id → its plan (config, arm, mask), for every selected update
    results: Sequence[UpdateResult]  # the delivered updates, trained
    evaluation: EvalResult | None


@dataclass
class RoundExtras:
    """What a strategy/configurator adds to the run's tables for a round.

    ``update_columns``: device id → extra columns of its ``updates.parquet`` row; ``round_columns``: extra
    columns of the ``rounds.parquet`` row; ``tables``: rows of extra tables (``<name>.parquet``), to which the
    recorder adds the round's number as the first column, ``round``.
    """

    update_columns: dict[int, Columns] = field(default_factory=dict)
    round_columns: Columns = field(default_factory=dict)
    tables: dict[str, list[Columns]] = field(default_factory=dict)
