"""The short table printed at the end of ``fleetsim run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["language_model", "print_summary"]


def language_model(summary: dict[str, Any]) -> bool:
    """Whether a run's summary is of a language model (``task: causal_lm``): perplexity, next-token accuracy."""
    return summary.get("task") == "causal_lm"


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "not reached"
    s = round(seconds)
    return f"{seconds:,.0f} s ({s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s)"


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    """Print the run's headline numbers and where its files are."""
    table = Table(title=f"{summary['scenario']} · {summary['strategy']} · seed {summary['seed']}", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value")
    lost = summary["updates_lost"]
    rows = [
        *([("mode", summary["mode"])] if summary.get("mode", "training") != "training" else []),
        ("model / dataset", f"{summary['model']} / {summary['dataset']}"),
        ("fleet", f"{summary['fleet_size']} devices"),
        (
            "rounds",
            f"{summary['rounds']} {summary.get('rounds_mode', 'sync')}, {summary.get('selection', 'uniform')} "
            f"selection (stopped: {summary['stop_reason']})",
        ),
        *([("server links", _server(summary["server_mbps"]))] if "server_mbps" in summary else []),
        ("simulated time", _fmt_time(summary["sim_time_s"])),
        *_quality_rows(summary),
        ("updates delivered / selected", f"{summary['updates_delivered']} / {summary['updates_selected']}"),
        ("updates lost", ", ".join(f"{k} {v}" for k, v in sorted(lost.items())) or "none"),
        *_configurator_rows(summary.get("configurator")),
        ("device energy", f"{summary['device_energy_j'] / 3600:,.2f} Wh"),
        ("bytes moved", f"{(summary['bytes_down'] + summary['bytes_up']) / 1e6:,.1f} MB"),
        (
            "host time",
            f"{summary['host_time_s']['total']:,.1f} s (training {summary['host_time_s']['training']:,.1f} s)"
            + _trained_on(summary.get("host", {})),
        ),
        ("run directory", str(run_dir)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _quality_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Target, time to it and the model's final quality: accuracy against the majority class, or (a language
    model) perplexity from its start and next-token accuracy."""
    targets = [
        f"{name} {summary[key]:g}"
        for key, name in (("target_accuracy", "accuracy"), ("target_perplexity", "perplexity"))
        if summary.get(key) is not None
    ]
    rows = [
        ("target", " or ".join(targets) or "none"),
        ("time to target", _fmt_time(summary["time_to_target_s"]) if targets else "-"),
    ]
    if language_model(summary):
        start, end = summary.get("initial_perplexity"), summary.get("final_perplexity")
        rows.append(("perplexity (start → final)", f"{_number(start, 2)} → {_number(end, 2)}"))
        rows.append(("final next-token accuracy", _number(summary["final_accuracy"])))
    else:
        rows.append(("final accuracy", _number(summary["final_accuracy"])))
        rows.append(("majority-class accuracy", _number(summary["majority_class_accuracy"])))
    return rows


def _trained_on(host: dict[str, Any]) -> str:
    """`` on process × 2, cpu, fp32`` (empty for summaries written before these were recorded)."""
    if "executor" not in host:
        return ""
    workers = f" × {host['workers']}" if host["executor"] != "inline" else ""
    return f" on {host['executor']}{workers}, {host['device']}, {host['precision']}"


def _configurator_rows(conf: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What the configurator chose, first → last quarter of the rounds (nothing without a configurator)."""
    if conf is None:
        return []
    n, times = conf["rounds_each"], conf["round_time_s"]
    ratios = ", ".join(
        f"{tier} {_number(r['first'], 2)} → {_number(r['last'], 2)}"
        for tier, r in conf["dropout_ratio_by_tier"].items()
    )
    return [
        (f"configurator: dropout (first → last {n} rounds)", ratios),
        ("configurator: round time", f"{times['first']:,.1f} s → {times['last']:,.1f} s"),
    ]


def _server(mbps: dict[str, float | None]) -> str:
    """The server's capped links, e.g. "sends ≤ 1,000 Mbit/s, receives uncapped" (shared by transfers)."""
    cap = {k: "uncapped" if v is None else f"≤ {v:,g} Mbit/s" for k, v in mbps.items()}
    return f"sends {cap['downlink_mbps']}, receives {cap['uplink_mbps']} (shared by the transfers in flight)"
