"""What a finished round tells the strategy, and what the strategy adds to the run's tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.updates import UpdateRecord, UpdateResult

__all__ = ["RoundExtras", "RoundFeedback"]


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
