"""The Python entry point: run a scenario given as a file, a mapping or a :class:`Scenario`, get its tables.

    import fleetsim
    run = fleetsim.run("scenarios/tiny.yaml", overrides={"strategy.name": "droppeft", "seed": 3})
    run.rounds[["round", "end_s", "accuracy"]]

Overrides are the command line's ``--set`` (``["seed=3"]``) or a mapping of the same dotted paths to values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fleetsim.app.loading import LoadedScenario, load_scenario, load_scenario_tree
from fleetsim.app.runner import run_scenario
from fleetsim.io.runs import Run, load_run
from fleetsim.spec.scenario import Scenario

__all__ = ["ScenarioLike", "load", "run"]

ScenarioLike = str | Path | Mapping[str, Any] | Scenario
# The name a scenario that comes from Python has in error messages; its relative paths resolve from the cwd.
IN_MEMORY = Path("<scenario from Python>")


def _override_list(overrides: Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):  # JSON is YAML: every value reads back as itself
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return list(overrides)


def load(scenario: ScenarioLike, overrides: Sequence[str] | Mapping[str, Any] | None = None) -> LoadedScenario:
    """Validate and cross-check ``scenario`` with ``overrides`` applied; raises
    :class:`~fleetsim.core.errors.InputError` (naming the field) for any mistake."""
    extra = _override_list(overrides)
    if isinstance(scenario, str | Path):
        return load_scenario(scenario, extra)
    tree = scenario.model_dump(mode="json") if isinstance(scenario, Scenario) else json.loads(json.dumps(scenario))
    return load_scenario_tree(tree, IN_MEMORY, extra)


def run(
    scenario: ScenarioLike,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    run_dir: str | Path | None = None,
    progress: bool = False,
    label: str | None = None,
) -> Run:
    """Simulate ``scenario`` (a YAML file, a mapping of the same tree, or a :class:`Scenario`) into a new run
    directory (``run_dir``, which must not exist; default ``<output_dir>/<name>-<time>``) and return the
    run: its ``rounds``, ``updates`` and ``events`` tables, ``summary`` and resolved ``scenario``."""
    loaded = load(scenario, overrides)
    result = run_scenario(loaded, run_dir=None if run_dir is None else Path(run_dir), progress=progress, label=label)
    return load_run(result.run_dir)
