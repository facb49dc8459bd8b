"""Figures of one run, shared by ``fleetsim report`` and the notebooks in ``analysis/``.

Each ``plot_*`` function takes a :class:`~fleetsim.io.runs.Run` and returns a matplotlib Figure with labelled
axes (units included). ``write_report`` saves every figure as PNG plus a short Markdown summary. Importing
this module leaves matplotlib's backend alone: notebooks render inline, and the command line chooses a
non-interactive backend for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fleetsim.core.updates import Outcome
from fleetsim.io.curves import time_unit
from fleetsim.io.report_text import language_model
from fleetsim.io.runs import Run

__all__ = [
    "FIGURES",
    "figures_for",
    "plot_configurator",
    "plot_convergence",
    "plot_memory",
    "plot_participation",
    "plot_perplexity",
    "plot_time_breakdown",
    "write_report",
]

GIB = 1024**3
OUTCOME_COLORS: dict[str, str] = {
    Outcome.DELIVERED: "tab:green",
    Outcome.OFFLINE: "tab:gray",
    Outcome.FAILURE: "tab:red",
    Outcome.DEADLINE: "tab:orange",
    Outcome.OOM: "tab:purple",
}


# Distinct line styles, so lines stay apart in grey print and for colour-blind readers.
STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (1, 1)), "P")]


def has_accuracy(run: Run) -> bool:
    """Whether the run evaluated a model (systems-mode runs do not)."""
    return "accuracy" in run.rounds and bool(run.rounds.accuracy.notna().any())


def has_perplexity(run: Run) -> bool:
    """Whether the run evaluated a language model (its rounds carry a perplexity)."""
    return "perplexity" in run.rounds and bool(run.rounds.perplexity.notna().any())


def has_configurator(run: Run) -> bool:
    """Whether an online configurator chose the runs' configurations (its updates carry an arm)."""
    return "arm" in run.updates and bool(run.updates.arm.notna().any())


def plot_convergence(run: Run) -> Figure:
    """Global (and personalized) accuracy against simulated time (seconds, minutes or hours, from the span);
    the majority-class accuracy, the target and the time to target marked."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ev = run.rounds.dropna(subset=["accuracy"])
    per, unit = time_unit(float(run.summary.get("sim_time_s") or ev.end_s.max() or 0.0))
    times = [0.0, *(ev.end_s / per)]
    ax.plot(times, [run.summary["initial_accuracy"], *ev.accuracy], marker="o", markersize=3, label="global model")
    if "personalized_accuracy" in ev and ev.personalized_accuracy.notna().any():
        ax.plot(
            ev.end_s / per,
            ev.personalized_accuracy,
            marker="s",
            markersize=3,
            linestyle="--",
            label="mean personalized",
        )
    majority, target = run.summary.get("majority_class_accuracy"), run.summary.get("target_accuracy")
    reference = None if majority is None else (majority, f"majority class {majority:.0%}")
    _mark_levels(ax, run, per, reference, None if target is None else (target, f"target {target:.0%}"))
    ax.set_xlabel(f"simulated wall-clock time ({unit})")
    what = "next-token accuracy" if language_model(run.summary) else "accuracy"
    ax.set_ylabel(f"test {what} (fraction)")
    ax.set_title(f"{run.label}: {what} vs simulated time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _mark_levels(
    ax: Any, run: Run, per: float, reference: tuple[float, str] | None, target: tuple[float, str] | None
) -> None:
    """A reference level (dash-dot), the target (dotted) and, when reached, the time to target (a star)."""
    if reference is not None:
        ax.axhline(reference[0], color="black", linestyle="-.", linewidth=0.8, label=reference[1])
    if target is None:
        return
    ax.axhline(target[0], color="grey", linestyle=":", label=target[1])
    if run.summary.get("time_to_target_s") is not None:
        ax.plot(
            [run.summary["time_to_target_s"] / per],
            [target[0]],
            marker="*",
            markersize=14,
            color="tab:red",
            linestyle="none",
            label="time to target",
        )


def plot_perplexity(run: Run) -> Figure:
    """A language model's test perplexity against simulated time (log scale), the initial perplexity, the
    target and the time to target marked."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ev = run.rounds.dropna(subset=["perplexity"])
    per, unit = time_unit(float(run.summary.get("sim_time_s") or ev.end_s.max() or 0.0))
    initial = run.summary.get("initial_perplexity")
    times, values = (
        [*([0.0] if initial is not None else []), *(ev.end_s / per)],
        [*([initial] if initial is not None else []), *ev.perplexity],
    )
    ax.plot(times, values, marker="o", markersize=3, label="global model")
    target = run.summary.get("target_perplexity")
    level = None if target is None else (target, f"target {target:g}")
    _mark_levels(ax, run, per, None if initial is None else (initial, f"before training {initial:,.1f}"), level)
    ax.set_yscale("log")
    ax.set_xlabel(f"simulated wall-clock time ({unit})")
    ax.set_ylabel("test perplexity (log scale)")
    ax.set_title(f"{run.label}: perplexity vs simulated time")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_time_breakdown(run: Run) -> Figure:
    """Per device tier: mean download, compute, upload and waiting time per selected update (seconds)."""
    u = run.updates.merge(run.rounds[["round", "end_s"]], on="round")
    u = u.assign(waiting_s=(u.end_s_y - u.end_s_x).clip(lower=0.0))
    mean = u.groupby("tier")[["download_s", "compute_s", "upload_s", "waiting_s"]].mean()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    mean.plot.barh(stacked=True, ax=ax, color=["tab:blue", "tab:orange", "tab:green", "tab:gray"])
    ax.set_xlabel("seconds per selected update (mean; waiting = until the round ends)")
    ax.set_ylabel("device tier")
    ax.set_title(f"{run.label}: where the time goes")
    ax.legend(["download", "compute", "upload", "waiting"], fontsize=8)
    fig.tight_layout()
    return fig


def plot_participation(run: Run) -> Figure:
    """Per device tier: updates by outcome (delivered or lost, by reason)."""
    counts = run.updates.groupby(["tier", "outcome"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    counts.plot.barh(stacked=True, ax=ax, color=[OUTCOME_COLORS.get(c, "black") for c in counts.columns])
    ax.set_xlabel("updates (count)")
    ax.set_ylabel("device tier")
    ax.set_title(f"{run.label}: who participates, and what became of the updates")
    ax.legend(fontsize=8, title="outcome")
    fig.tight_layout()
    return fig


def plot_memory(run: Run) -> Figure:
    """Peak memory of each update against its device's usable memory (GiB), by tier; oom marked."""
    u = run.updates
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    tiers = sorted(u.tier.unique())
    oom_labelled = False
    for i, tier in enumerate(tiers):
        part = u[u.tier == tier]
        ok = part[part.outcome != Outcome.OOM]
        ax.scatter(
            [i] * len(ok),
            ok.peak_memory_bytes / GIB,
            s=12,
            color="tab:blue",
            alpha=0.6,
            label="update peak" if i == 0 else None,
        )
        oom = part[part.outcome == Outcome.OOM]
        if len(oom):
            ax.scatter(
                [i] * len(oom),
                oom.peak_memory_bytes / GIB,
                s=30,
                marker="x",
                color="tab:purple",
                label=None if oom_labelled else "oom (lost)",
            )
            oom_labelled = True
        ax.hlines(
            part.usable_memory_bytes.max() / GIB,
            i - 0.35,
            i + 0.35,
            color="tab:red",
            label="usable memory (largest in tier)" if i == 0 else "_nolegend_",
        )
    ax.set_xticks(range(len(tiers)), tiers, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("memory (GiB, log scale)")
    ax.set_xlabel("device tier")
    ax.set_title(f"{run.label}: peak memory per update vs usable memory")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_configurator(run: Run) -> Figure:
    """Dropout ratio assigned over rounds, mean per tier (the configurator's choices)."""
    u = run.updates
    column = "configured_dropout_ratio" if "configured_dropout_ratio" in u else "dropout_ratio"
    ratio = u.groupby(["round", "tier"])[column].mean().unstack()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i, tier in enumerate(ratio.columns):
        line, marker = STYLES[i % len(STYLES)]
        ax.plot(ratio.index, ratio[tier], linestyle=line, marker=marker, markersize=4, label=tier)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("layer-dropout ratio (fraction of blocks dropped)")
    ax.set_ylim(-0.02, 1.0)
    ax.set_title(f"{run.label}: dropout ratio assigned per device tier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="tier")
    fig.tight_layout()
    return fig


FIGURES = {
    "convergence": plot_convergence,
    "perplexity": plot_perplexity,
    "time_breakdown": plot_time_breakdown,
    "participation": plot_participation,
    "memory": plot_memory,
    "configurator": plot_configurator,
}
# A figure is drawn only where it means something: accuracy when a model was evaluated, perplexity when it
# was a language model, the configurator's choices when one chose.
MEANINGFUL: dict[str, Callable[[Run], bool]] = {
    "convergence": has_accuracy,
    "perplexity": has_perplexity,
    "configurator": has_configurator,
}


def figures_for(run: Run) -> dict[str, Callable[[Run], Figure]]:
    """The figures that mean something for ``run``, by name."""
    return {name: plot for name, plot in FIGURES.items() if MEANINGFUL.get(name, lambda _: True)(run)}


def _summary_markdown(run: Run) -> str:
    s: dict[str, Any] = run.summary
    lost = ", ".join(f"{k} {v}" for k, v in sorted(s["updates_lost"].items())) or "none"
    ttt = s.get("time_to_target_s")
    lines = [
        f"# {run.label}",
        "",
        f"* scenario `{s['scenario']}`, strategy `{s['strategy']}`, seed {s['seed']}, model `{s['model']}`, "
        f"dataset `{s['dataset']}`, {s['fleet_size']} devices"
        + (f", cost model proxy `{s['cost_model']['proxy']}`" if s["cost_model"].get("proxy") else ""),
        f"* {s['rounds']} rounds ({s.get('rounds_mode', 'sync')}, {s.get('selection', 'uniform')} selection), "
        f"{s['sim_time_s']:,.0f} simulated seconds (stopped: {s['stop_reason']})",
        _target_line(s, ttt),
        _quality_line(s),
        f"* updates delivered {s['updates_delivered']} of {s['updates_selected']}; lost: {lost}",
        f"* device energy {s['device_energy_j'] / 3600:,.2f} Wh; "
        f"traffic {(s['bytes_down'] + s['bytes_up']) / 1e6:,.1f} MB",
        "",
    ]
    return "\n".join(lines)


def _target_line(s: dict[str, Any], ttt: float | None) -> str:
    if s.get("target_perplexity") is not None:
        target = f"perplexity {s['target_perplexity']:g}"
    elif s.get("target_accuracy") is not None:
        target = f"accuracy {s['target_accuracy']:g}"
    else:
        return "* no target set"
    return f"* time to target {target}: " + (f"{ttt:,.0f} s" if ttt is not None else "not reached")


def _quality_line(s: dict[str, Any]) -> str:
    if s.get("final_accuracy") is None:
        return f"* no accuracy: {s.get('mode', 'no evaluation ran')}"
    personal = f", mean personalized {s['personalized_accuracy']:.4f}" if s.get("personalized_accuracy") else ""
    if language_model(s):
        return (
            f"* perplexity {s['initial_perplexity']:,.2f} before training, {s['final_perplexity']:,.2f} at the end; "
            f"next-token accuracy {s['final_accuracy']:.4f}{personal}"
        )
    return f"* final accuracy {s['final_accuracy']:.4f} (majority class {s['majority_class_accuracy']:.4f}){personal}"


def write_report(run: Run, out_dir: Path) -> list[Path]:
    """Save every figure that means something for ``run`` as ``<name>.png`` and ``report.md`` into
    ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, plot in figures_for(run).items():
        fig = plot(run)
        path = out_dir / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    md = out_dir / "report.md"
    md.write_text(_summary_markdown(run) + "\n".join(f"![{p.stem}]({p.name})" for p in paths) + "\n")
    return [*paths, md]
