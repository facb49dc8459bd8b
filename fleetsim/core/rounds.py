"""The round contract's value types: what a strategy assigns and aggregates, what a finished round feeds
back, and what the strategy adds to the run's tables.

A strategy's hooks return these values instead of keeping per-round fields for a later hook to read, so a
round is a pure function of (strategy state, inputs) → (outputs, new strategy state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateRecord, UpdateResult

if TYPE_CHECKING:
    import torch

__all__ = ["Aggregate", "Assignment", "RoundExtras", "RoundFeedback"]

Columns = dict[str, object]


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
    columns of the ``rounds.parquet`` row; ``tables``: rows of extra tables (``<name>.parquet``).
    """

    update_columns: dict[int, Columns] = field(default_factory=dict)
    round_columns: Columns = field(default_factory=dict)
    tables: dict[str, list[Columns]] = field(default_factory=dict)
