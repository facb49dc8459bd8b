"""Reading run directories back: ``fleetsim.load_run(path)`` and ``load_runs(paths)``.

A run directory holds ``rounds.parquet``, ``updates.parquet``, ``events.parquet``, ``summary.json`` and
``scenario.resolved.yaml`` (schema in the README); a run that is still going or stopped early holds the rows
of its committed rounds in ``parts/``, which ``load_run`` reads instead. ``load_runs`` stacks several runs
into tidy frames with a ``run`` column, ready for pandas/matplotlib.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fleetsim.core.errors import InputError
from fleetsim.core.jsonfile import read_json_object
from fleetsim.io.recorder import Recorder
from fleetsim.io.rundir import RunDir

__all__ = ["Run", "Runs", "load_run", "load_runs"]

TABLES = ("rounds", "updates", "events")


@dataclass(frozen=True)
class Run:
    """One run: its tables, its summary and its resolved scenario."""

    path: Path
    rounds: pd.DataFrame
    updates: pd.DataFrame
    events: pd.DataFrame
    summary: dict[str, Any]
    scenario: dict[str, Any]
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)  # the strategy's own tables (e.g. bandit)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        """``label`` from the summary when a study named the run, else the directory name."""
        return str(self.summary.get("label") or self.path.name)

    @property
    def status(self) -> str:
        """``complete``, or ``running`` / ``interrupted`` (then the tables hold the committed rounds only)."""
        return str(self.summary.get("status", "complete"))


@dataclass(frozen=True)
class Runs:
    """Several runs stacked: every frame has a leading ``run`` column (the run's label)."""

    rounds: pd.DataFrame
    updates: pd.DataFrame
    events: pd.DataFrame
    summaries: pd.DataFrame  # one row per run, flattened summary.json
    runs: list[Run]


def load_run(path: str | Path) -> Run:
    """Load one run directory — its three tables, any table its strategy wrote (``extra``, e.g. ``bandit``),
    summary and resolved scenario; a missing file is an :class:`InputError` naming it."""
    root = Path(path)
    if not (root / "summary.json").is_file():
        raise InputError(root, "", "a run directory (with summary.json)", str(root))
    summary = read_json_object(root / "summary.json")
    if all((root / f"{name}.parquet").is_file() for name in TABLES):
        frames = {p.stem: _read_table(p) for p in sorted(root.glob("*.parquet"))}
    else:  # a run still going, or stopped early: the rounds committed so far
        recorder = Recorder()
        recorder.extend(RunDir(root).read_parts())
        frames = recorder.frames()
    resolved = root / "scenario.resolved.yaml"
    scenario = yaml.safe_load(resolved.read_text()) if resolved.is_file() else {}
    extra = {name: frame for name, frame in frames.items() if name not in TABLES}
    return Run(root, frames["rounds"], frames["updates"], frames["events"], summary, scenario, extra)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(path, "", "a Parquet table written by fleetsim", f"{type(err).__name__}: {err}") from None


def load_runs(paths: Iterable[str | Path]) -> Runs:
    """Load several runs and stack their tables with a ``run`` column."""
    runs = [load_run(p) for p in paths]

    def stack(name: str) -> pd.DataFrame:
        parts = [getattr(r, name).assign(run=r.label) for r in runs]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return frame[["run", *[c for c in frame.columns if c != "run"]]] if len(frame.columns) else frame

    summaries = pd.json_normalize([{**r.summary, "run": r.label} for r in runs])
    return Runs(stack("rounds"), stack("updates"), stack("events"), summaries, runs)
