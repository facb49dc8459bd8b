"""Comparison of runs: tables (CSV and Markdown) and accuracy-versus-simulated-time curves (PNG).

``comparison.csv`` has one row per run; every number in it comes from the run's ``summary.json`` or its
``updates.parquet`` (the test suite checks that they match), and its speedup and memory saving are against
the baseline run of the same seed. When a variant ran with several seeds, ``variants.csv`` gives each
metric's mean and 95% interval over them (:mod:`fleetsim.io.variants`), ``comparison.md`` shows that table,
and the curves show each variant's mean with a band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fleetsim.core.errors import InputError
from fleetsim.core.intervals import t_interval
from fleetsim.core.updates import Outcome
from fleetsim.io.curves import accuracy_at, accuracy_curve, time_unit
from fleetsim.io.report import STYLES
from fleetsim.io.runs import Run
from fleetsim.io.variants import group_by_variant, variant_markdown, variant_table

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
        "seed": s["seed"],
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
    first = _baseline_row(table, baseline)
    same_seed = table[table.run == first.run].set_index("seed")
    bases = [same_seed.loc[seed] if seed in same_seed.index else first for seed in table.seed]
    table["speedup_vs_baseline"] = [
        b.time_to_target_s / t if pd.notna(t) and pd.notna(b.time_to_target_s) and t > 0 else math.nan
        for b, t in zip(bases, table.time_to_target_s, strict=True)
    ]
    table["memory_saving_vs_baseline"] = [
        1 - m / b.peak_memory_median_gib for b, m in zip(bases, table.peak_memory_median_gib, strict=True)
    ]
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
    """Global test accuracy against simulated wall-clock time. One line per variant: a single run as
    measured (time to target marked ★), several seeds as their mean with a 95% band (Student t, pointwise)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    per, unit = time_unit(max(float(r.summary["sim_time_s"]) for r in runs))
    for i, (label, by_seed) in enumerate(group_by_variant(runs).items()):
        members = list(by_seed.values())
        style, marker = STYLES[i % len(STYLES)]
        if len(members) == 1:
            run = members[0]
            times, accuracy = accuracy_curve(run)
            (line,) = ax.plot(times / per, accuracy, linestyle=style, marker=marker, markersize=3, label=label)
            ttt = run.summary.get("time_to_target_s")
            if ttt is not None:
                color = line.get_color()
                ax.plot([ttt / per], [run.summary["target_accuracy"]], marker="*", markersize=12, color=color)
            continue
        end = min(float(r.summary["sim_time_s"]) for r in members)
        grid = np.linspace(0.0, end, 200)
        curves = np.stack([accuracy_at(r, grid) for r in members])
        low, high = t_interval(curves)
        (line,) = ax.plot(
            grid / per, curves.mean(axis=0), linestyle=style, label=f"{label} (mean of {len(members)} seeds)"
        )
        ax.fill_between(grid / per, np.clip(low, 0, 1), np.clip(high, 0, 1), color=line.get_color(), alpha=0.2, lw=0)
    majorities = {float(r.summary["majority_class_accuracy"]) for r in runs if r.summary.get("majority_class_accuracy")}
    if len(majorities) == 1:
        majority = majorities.pop()
        ax.axhline(majority, color="black", linestyle="-.", linewidth=0.8, label=f"majority class {majority:.0%}")
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.0%}")
    ax.set_xlabel(f"simulated wall-clock time ({unit})")
    ax.set_ylabel("global test accuracy (fraction)")
    ax.set_title("Accuracy vs simulated time (★ = time to target; bands: 95% CI over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_comparison(runs: Sequence[Run], out_dir: Path, baseline: str | None = None) -> dict[str, Path]:
    """Write ``comparison.csv``, ``comparison.md``, ``accuracy_vs_time.png`` (and ``variants.csv`` when a
    variant has several seeds) into ``out_dir``; every run must be complete."""
    out_dir.mkdir(parents=True, exist_ok=True)
    incomplete = [r for r in runs if r.status != "complete"]
    if incomplete:
        raise InputError(incomplete[0].path, "", "a complete run (summary.json status: complete)", incomplete[0].status)
    table = comparison_table(runs, baseline)
    paths = {
        "csv": out_dir / "comparison.csv",
        "md": out_dir / "comparison.md",
        "png": out_dir / "accuracy_vs_time.png",
    }
    table.to_csv(paths["csv"], index=False)
    if any(len(by_seed) > 1 for by_seed in group_by_variant(runs).values()):
        variants = variant_table(runs, baseline)
        paths["variants"] = out_dir / "variants.csv"
        variants.to_csv(paths["variants"], index=False)
        paths["md"].write_text(variant_markdown(variants))
    else:
        paths["md"].write_text(markdown_table(table))
    targets = {r.summary.get("target_accuracy") for r in runs} - {None}
    plot_curves(runs, paths["png"], target=targets.pop() if len(targets) == 1 else None)
    return paths
