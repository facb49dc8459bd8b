"""The rows of a run's tables, collected as rounds finish (the output contract notebooks rely on; schema in
the README).

``rounds`` one row per round; ``updates`` one row per selected update; ``events`` availability changes,
losses and waits; plus the extra tables a strategy adds (``bandit``). The tables hold simulated quantities
only, so the same scenario and seed give identical tables; host (wall-clock) times go to ``summary.json``.

Every table's ``round`` column is the round's 1-based number (round 1 is the first): the recorder is given
0-based indices (``round_idx``) and writes :func:`~fleetsim.core.rounds.round_number` of them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.intervals import wilson_interval
from fleetsim.core.rounds import RoundExtras, round_number
from fleetsim.core.updates import Outcome, TrainConfig, UpdatePlan, UpdateRecord, UpdateResult

__all__ = ["Recorder"]


class Recorder:
    """Collects table rows during a run; ``perplexity``: rounds have a ``perplexity`` column (a language
    model's runs)."""

    def __init__(self, perplexity: bool = False) -> None:
        self.perplexity = perplexity
        self.rounds: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def event(self, time_s: float, round_idx: int, device_id: int | None, kind: str, detail: str = "") -> None:
        self.events.append(
            {
                "time_s": time_s,
                "round": round_number(round_idx),
                "device_id": -1 if device_id is None else device_id,
                "kind": kind,
                "detail": detail,
            }
        )

    def add_round(
        self,
        round_idx: int,
        start_s: float,
        end_s: float,
        n_available: int,
        records: Sequence[UpdateRecord],
        plans: Mapping[int, UpdatePlan],
        results: Sequence[UpdateResult],
        evaluation: EvalResult | None,
        extras: RoundExtras | None = None,
    ) -> None:
        round_no = round_number(round_idx)
        by_device = {res.plan.device_id: res for res in results}
        for rec in records:
            plan = plans[rec.device_id]
            row = dict(vars(rec))  # a flat dataclass of plain values: no deep copy needed
            row["round"] = round_number(row.pop("round_idx"))
            row["outcome"] = rec.outcome.value
            row["failed_phase"] = rec.failed_phase or ""
            row["offline_cause"] = rec.offline_cause or ""
            shape, dropout = _config_columns(plan.config)
            row.update(shape)
            row["n_samples"] = plan.n_samples
            row["dropout_ratio"] = plan.dropped_fraction
            row.update(dropout)
            res = by_device.get(rec.device_id)
            row["trained"] = res is not None
            row["train_loss_first"] = res.train_loss_first if res else math.nan
            row["train_loss_last"] = res.train_loss_last if res else math.nan
            row["train_loss_mean"] = res.train_loss_mean if res else math.nan
            if extras is not None:
                row.update(extras.update_columns.get(rec.device_id, {}))
            self.updates.append(row)
        counts = {reason.value: sum(r.outcome is reason for r in records) for reason in Outcome.losses()}
        # Sampling noise of the accuracy on the evaluation subset (Wilson score interval).
        low, high = wilson_interval(evaluation.accuracy, evaluation.n_examples) if evaluation else (math.nan, math.nan)
        losses = [res.train_loss_mean for res in results]
        self.rounds.append(
            {
                "round": round_no,
                "start_s": start_s,
                "end_s": end_s,
                "duration_s": end_s - start_s,
                "n_available": n_available,
                "n_selected": len(records),
                "n_delivered": sum(r.outcome is Outcome.DELIVERED for r in records),
                "n_lost": sum(r.outcome is not Outcome.DELIVERED for r in records),
                **{f"lost_{k}": v for k, v in counts.items()},
                "accuracy": evaluation.accuracy if evaluation else math.nan,
                "accuracy_ci95_low": low,
                "accuracy_ci95_high": high,
                "eval_loss": evaluation.loss if evaluation else math.nan,
                **({"perplexity": _perplexity(evaluation)} if self.perplexity else {}),
                "train_loss_mean": sum(losses) / len(losses) if losses else math.nan,
                "bytes_down": sum(r.bytes_down for r in records),
                "bytes_up": sum(r.bytes_up for r in records),
                "energy_j": sum(r.energy_j for r in records),
                "flops_delivered": sum(r.flops for r in records if r.outcome is Outcome.DELIVERED),
                "dropout_ratio_mean": float(sum(p.dropped_fraction for p in plans.values()) / max(len(plans), 1)),
                **(extras.round_columns if extras is not None else {}),
            }
        )
        if extras is not None:
            for name, rows in extras.tables.items():
                self.tables.setdefault(name, []).extend({"round": round_no, **row} for row in rows)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's rows so far, by table name."""
        return {"rounds": self.rounds, "updates": self.updates, "events": self.events, **self.tables}

    def counts(self) -> dict[str, int]:
        """How many rows each table holds (a mark for :meth:`rows_since`)."""
        return {name: len(rows) for name, rows in self.rows().items()}

    def rows_since(self, counts: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
        """The rows added after ``counts`` was taken."""
        return {name: rows[counts.get(name, 0) :] for name, rows in self.rows().items()}

    def extend(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Append rows (a run's committed rows, when it resumes)."""
        for name, new in rows.items():
            target = {"rounds": self.rounds, "updates": self.updates, "events": self.events}.get(name)
            (target if target is not None else self.tables.setdefault(name, [])).extend(new)

    def frames(self) -> dict[str, pd.DataFrame]:
        events = pd.DataFrame(self.events, columns=["time_s", "round", "device_id", "kind", "detail"])
        return {
            "rounds": pd.DataFrame(self.rounds),
            "updates": pd.DataFrame(self.updates),
            "events": events.sort_values(["time_s", "device_id", "kind"], kind="stable").reset_index(drop=True),
            **{name: pd.DataFrame(rows) for name, rows in self.tables.items()},
        }


@functools.lru_cache(maxsize=256)
def _config_columns(config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``updates`` columns a training configuration sets, the same for every update it configures: its
    shape, and its dropout (they go either side of ``n_samples`` and ``dropout_ratio``)."""
    shape: dict[str, Any] = {
        "local_steps": config.local_steps,
        "batch_size": config.batch_size,
        "seq_len": config.seq_len,
        "lr": config.lr,
    }
    dropout = {
        "configured_dropout_ratio": config.dropout.ratio,
        "trainable_depth": config.trainable_depth or -1,
        "schedule": config.dropout.schedule if config.dropout.ratio > 0 else "none",
    }
    return shape, dropout


def _perplexity(evaluation: EvalResult | None) -> float:
    return math.nan if evaluation is None or evaluation.perplexity is None else evaluation.perplexity
