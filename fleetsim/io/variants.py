"""Variants over seeds: each metric's mean and 95% bootstrap interval, and paired ratios to the baseline.

A study runs every variant (a strategy and its settings) with the same list of seeds; a seed fixes the
fleet draw, the data partition and every random choice, so run *s* of two variants differ only by the
method. Per variant the table gives, over its seeds, the mean and the percentile-bootstrap 95% interval of:

* ``time_to_target_s`` — runs that never reached the target count with their end time, and ``reached``
  says how many did (the mean is then a lower bound, marked ``≥``);
* ``speedup`` — paired, per seed: the baseline's time to target over the variant's, over the seeds where
  both reached it (``pairs`` says how many);
* ``acc_at_baseline_ttt`` — accuracy at the baseline's time to target of the same seed (equal time);
* ``acc_at_common_end`` — accuracy when the shortest run of the study ended (equal time);
* ``time_avg_accuracy`` — the area under accuracy versus time up to that moment, per second;
* ``peak_memory_median_gib``, ``memory_saving`` (paired, against the same seed's baseline), ``energy_wh``,
  ``traffic_mb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fleetsim.core.errors import InputError
from fleetsim.core.intervals import bootstrap_interval
from fleetsim.io.curves import accuracy_at, time_averaged_accuracy
from fleetsim.io.runs import Run

__all__ = ["METRICS", "group_by_variant", "variant_markdown", "variant_table"]

GIB = 1024**3

# Metric → its heading in the Markdown table.
METRICS = {
    "time_to_target_s": "time to target (s)",
    "speedup": "speedup vs baseline (paired)",
    "acc_at_baseline_ttt": "acc. at baseline's time to target",
    "acc_at_common_end": "acc. at common end",
    "time_avg_accuracy": "time-avg acc.",
    "peak_memory_median_gib": "median device peak (GiB)",
    "memory_saving": "memory saving (paired)",
    "energy_wh": "energy (Wh)",
    "traffic_mb": "traffic (MB)",
}


def group_by_variant(runs: Sequence[Run]) -> dict[str, dict[int, Run]]:
    """Variant label → seed → run (runs keep the order they came in)."""
    out: dict[str, dict[int, Run]] = {}
    for run in runs:
        out.setdefault(run.label, {})[int(run.summary["seed"])] = run
    return out


def _peak_median_gib(run: Run) -> float:
    if run.updates.empty:
        return math.nan
    return float(run.updates.groupby("device_id").peak_memory_bytes.max().median() / GIB)


def _ttt(run: Run) -> float:
    """Time to target, or the run's end if it never got there."""
    ttt = run.summary.get("time_to_target_s")
    return float(ttt) if ttt is not None else float(run.summary["sim_time_s"])


def _reached(run: Run) -> bool:
    return run.summary.get("time_to_target_s") is not None


def _baseline_label(groups: dict[str, dict[int, Run]], baseline: str | None) -> str:
    labels = list(groups)
    if baseline is None:
        return labels[0]
    if baseline in groups:
        return baseline
    by_strategy = [label for label, runs in groups.items() if next(iter(runs.values())).summary["strategy"] == baseline]
    if by_strategy:
        return by_strategy[0]
    raise InputError("--baseline", "", f"a variant label ({', '.join(labels)}) or a strategy", baseline)


def _seed_values(by_seed: dict[int, Run], base: dict[int, Run], common_end: float) -> dict[str, list[float]]:
    """Each metric's value for every seed of one variant (NaN where it is undefined)."""
    seeds = sorted(by_seed)

    def per_seed(value: Callable[[Run, Run | None], float]) -> list[float]:
        return [value(by_seed[s], base.get(s)) for s in seeds]

    def paired(value: Callable[[Run, Run], float]) -> list[float]:
        return per_seed(lambda r, b: value(r, b) if b is not None else math.nan)

    return {
        "time_to_target_s": per_seed(lambda r, b: _ttt(r)),
        "speedup": paired(lambda r, b: _ttt(b) / _ttt(r) if _reached(b) and _reached(r) else math.nan),
        "acc_at_baseline_ttt": paired(lambda r, b: float(accuracy_at(r, _ttt(b))[0])),
        "acc_at_common_end": per_seed(lambda r, b: float(accuracy_at(r, common_end)[0])),
        "time_avg_accuracy": per_seed(lambda r, b: time_averaged_accuracy(r, common_end)),
        "peak_memory_median_gib": per_seed(lambda r, b: _peak_median_gib(r)),
        "memory_saving": paired(lambda r, b: 1 - _peak_median_gib(r) / _peak_median_gib(b)),
        "energy_wh": per_seed(lambda r, b: r.summary["device_energy_j"] / 3600),
        "traffic_mb": per_seed(lambda r, b: (r.summary["bytes_down"] + r.summary["bytes_up"]) / 1e6),
    }


def variant_table(runs: Sequence[Run], baseline: str | None = None) -> pd.DataFrame:
    """One row per variant: for each metric its mean, ``_low`` and ``_high`` (95% bootstrap over seeds)."""
    groups = group_by_variant(runs)
    base = groups[_baseline_label(groups, baseline)]
    common_end = min(float(r.summary["sim_time_s"]) for r in runs)
    rows = []
    for label, by_seed in groups.items():
        values = _seed_values(by_seed, base, common_end)
        row: dict[str, Any] = {
            "variant": label,
            "strategy": next(iter(by_seed.values())).summary["strategy"],
            "seeds": len(by_seed),
            "reached": sum(_reached(r) for r in by_seed.values()),
            "pairs": int(np.sum(~np.isnan(values["speedup"]))),
        }
        for metric, vals in values.items():
            finite = [v for v in vals if not math.isnan(v)]
            row[metric] = float(np.mean(finite)) if finite else math.nan
            row[f"{metric}_low"], row[f"{metric}_high"] = bootstrap_interval(finite)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["common_end_s"] = common_end
    return table


def _cell(mean: float, low: float, high: float, prefix: str = "") -> str:
    if math.isnan(mean):
        return "–"

    def fmt(v: float) -> str:
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"

    interval = "" if math.isnan(low) else f" [{fmt(low)}, {fmt(high)}]"
    return f"{prefix}{fmt(mean)}{interval}"


def variant_markdown(table: pd.DataFrame) -> str:
    """The variant table as Markdown: each cell ``mean [low, high]``."""
    head = ["variant", "seeds", "reached target", *METRICS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        cells = [str(r["variant"]), str(r["seeds"]), f"{r['reached']}/{r['seeds']}"]
        for metric in METRICS:
            prefix = "≥ " if metric == "time_to_target_s" and r["reached"] < r["seeds"] else ""
            cell = _cell(r[metric], r[f"{metric}_low"], r[f"{metric}_high"], prefix)
            if metric == "speedup" and r["pairs"] < r["seeds"]:
                cell += f" ({r['pairs']} of {r['seeds']} seeds)"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"\nMeans over seeds with 95% percentile-bootstrap intervals; equal-time accuracies read at the same "
        f"seed's baseline time to target and at {table.attrs.get('common_end_s', math.nan):,.0f} s (the shortest "
        "run's end); –: the runs had ended before that time; ≥: some runs never reached the target and count "
        "with their end time.\n"
    )
    return "\n".join(lines) + "\n" + note
