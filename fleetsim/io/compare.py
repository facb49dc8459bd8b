"""Comparison of runs: one table (CSV and Markdown) and accuracy-versus-simulated-time curves (PNG).

Every number in the table comes from a run's ``summary.json`` or its ``updates.parquet``; the test suite
checks that they match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fleetsim.core.errors import InputError
from fleetsim.core.updates import Outcome
from fleetsim.io.runs import Run

__all__ = ["comparison_table", "markdown_table", "plot_curves", "write_comparison"]

GIB = 1024**3


def _peak_memory_by_device(run: Run) -> pd.Series:
    """Each device's largest peak memory over its updates (what it had to hold), GiB."""
    if run.updates.empty:
        return pd.Series(dtype=float)
    return run.updates.groupby("device_id").peak_memory_bytes.max() / GIB


def comparison_row(run: Run) -> dict[str, Any]:
    s = run.summary
    updates = run.updates
    peaks = _peak_memory_by_device(run)
    ratio = updates.dropout_ratio.mean() if "dropout_ratio" in updates and len(updates) else 0.0
    row: dict[str, Any] = {
        "run": run.label,
        "strategy": s["strategy"],
        "mean_dropout_ratio": float(ratio),
        "rounds": s["rounds"],
        "time_to_target_s": s["time_to_target_s"],
        "sim_time_s": s["sim_time_s"],
        "final_accuracy": s["final_accuracy"],
        "best_accuracy": s["best_accuracy"],
        "personalized_accuracy": s.get("personalized_accuracy"),
        "peak_memory_median_gib": float(peaks.median()) if len(peaks) else math.nan,
        "peak_memory_max_gib": float(peaks.max()) if len(peaks) else math.nan,
        "energy_wh": s["device_energy_j"] / 3600,
        "traffic_mb": (s["bytes_down"] + s["bytes_up"]) / 1e6,
        "delivered": s["updates_delivered"],
        "selected": s["updates_selected"],
    }
    for reason in Outcome.losses():
        row[f"lost_{reason}"] = int(s["updates_lost"].get(reason, 0))
    row["host_time_s"] = s["host_time_s"]["total"]
    row["proxy"] = s["cost_model"].get("proxy")
    return row


def comparison_table(runs: Sequence[Run], baseline: str | None = None) -> pd.DataFrame:
    """One row per run; ``speedup`` and ``memory_saving`` are relative to ``baseline`` (default: first run)."""
    table = pd.DataFrame([comparison_row(r) for r in runs])
    if table.empty:
        return table
    base = _baseline_row(table, baseline)
    table["speedup_vs_baseline"] = [
        base.time_to_target_s / t if t is not None and base.time_to_target_s is not None and t > 0 else math.nan
        for t in table.time_to_target_s
    ]
    table["memory_saving_vs_baseline"] = 1 - table.peak_memory_median_gib / base.peak_memory_median_gib
    return table


def _baseline_row(table: pd.DataFrame, baseline: str | None) -> pd.Series:
    """The run ``baseline`` names, by run label or else by strategy (default: the first run)."""
    if baseline is None:
        return table.iloc[0]
    for column in ("run", "strategy"):
        match = table[table[column] == baseline]
        if len(match):
            return match.iloc[0]
    known = f"a run label ({', '.join(table.run)}) or a strategy ({', '.join(sorted(set(table.strategy)))})"
    raise InputError("--baseline", "", known, baseline)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def plot_curves(runs: Sequence[Run], path: Path, target: float | None = None) -> Path:
    """Global test accuracy against simulated wall-clock time, one line per run; time to target marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for run in runs:
        evaluated = run.rounds.dropna(subset=["accuracy"])
        times_h = [0.0, *(evaluated.end_s / 3600).tolist()]
        accuracy = [run.summary.get("initial_accuracy", math.nan), *evaluated.accuracy.tolist()]
        (line,) = ax.plot(times_h, accuracy, marker=".", label=run.label)
        ttt = run.summary.get("time_to_target_s")
        if ttt is not None:
            ax.plot([ttt / 3600], [run.summary["target_accuracy"]], marker="*", markersize=12, color=line.get_color())
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.0%}")
    ax.set_xlabel("simulated wall-clock time (hours)")
    ax.set_ylabel("global test accuracy (fraction)")
    ax.set_title("Accuracy vs simulated time (★ = time to target)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_comparison(runs: Sequence[Run], out_dir: Path, baseline: str | None = None) -> dict[str, Path]:
    """Write ``comparison.csv``, ``comparison.md`` and ``accuracy_vs_time.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_table(runs, baseline)
    paths = {
        "csv": out_dir / "comparison.csv",
        "md": out_dir / "comparison.md",
        "png": out_dir / "accuracy_vs_time.png",
    }
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(markdown_table(table))
    targets = {r.summary.get("target_accuracy") for r in runs} - {None}
    plot_curves(runs, paths["png"], target=targets.pop() if len(targets) == 1 else None)
    return paths
