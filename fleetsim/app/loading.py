"""Loading a scenario: read YAML, apply overrides, validate the tree, cross-check every id it names.

``load_scenario(path, overrides)`` is the one place that knows every registry (profiles, assets, strategies),
so lower layers never import it. Every failure is a one-line :class:`~fleetsim.core.errors.InputError`;
nothing runs before it passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetsim.core.errors import InputError
from fleetsim.policy.strategies import validate_strategy
from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR, DeviceProfile, load_profiles
from fleetsim.spec.scenario import Scenario, apply_overrides
from fleetsim.spec.schema import read_yaml_mapping, validate
from fleetsim.train import assets

__all__ = ["LoadedScenario", "load_scenario"]


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with the profiles it names and the raw tree it came from."""

    scenario: Scenario
    path: Path
    profiles: dict[str, DeviceProfile]
    raw: dict[str, Any]


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> LoadedScenario:
    """Read, override, validate and cross-check a scenario file.

    Raises
    ------
    InputError
        for any mistake, naming the file and the field path.
    """
    path = Path(path)
    raw = apply_overrides(read_yaml_mapping(path), overrides or [])
    scenario = validate(Scenario, raw, path)
    profiles_dir = (path.parent / scenario.profiles_dir) if scenario.profiles_dir else _default_profiles_dir(path)
    profiles = load_profiles(
        profiles_dir,
        [e.profile for e in scenario.fleet],
        [f"fleet[{i}].profile" for i in range(len(scenario.fleet))],
        path,
    )
    if scenario.rounds.clients_per_round > scenario.fleet_size:
        raise InputError(
            path,
            "rounds.clients_per_round",
            f"at most the fleet size ({scenario.fleet_size})",
            scenario.rounds.clients_per_round,
        )
    assets.check_model_id(scenario.model.id, path, "model.id")
    assets.check_dataset_id(scenario.dataset.id, path, "dataset.id")
    validate_strategy(scenario.strategy, path)
    return LoadedScenario(scenario=scenario, path=path, profiles=profiles, raw=raw)


def _default_profiles_dir(scenario_path: Path) -> Path:
    beside = scenario_path.resolve().parent.parent / "device_profiles"
    return beside if beside.is_dir() else BUILTIN_PROFILES_DIR
