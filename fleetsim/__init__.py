"""fleetsim: heterogeneous device fleets doing real federated LoRA fine-tuning, in simulated time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetsim.core.version import VERSION as __version__
from fleetsim.io.runs import Run, Runs, load_run, load_runs

if TYPE_CHECKING:
    from fleetsim.spec.scenario import Scenario

__all__ = ["Run", "Runs", "__version__", "load_run", "load_runs", "run"]


def run(
    scenario: str | Path | Mapping[str, Any] | Scenario,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    run_dir: str | Path | None = None,
    progress: bool = False,
    label: str | None = None,
) -> Run:
    """Simulate a scenario — a YAML file, a mapping of the same tree, or a ``Scenario`` — with ``overrides``
    (``["seed=3"]`` or ``{"seed": 3}``, dotted paths as in ``--set``) into a new run directory, and return
    the :class:`Run` (its ``rounds``, ``updates`` and ``events`` tables, ``summary`` and resolved scenario).
    See :func:`fleetsim.app.api.run`."""
    from fleetsim.app.api import run as run_any  # torch and friends load only when a run is asked for

    return run_any(scenario, overrides, run_dir=run_dir, progress=progress, label=label)
