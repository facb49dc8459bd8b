"""Loading a scenario: read YAML, apply overrides, validate the tree, cross-check every name it uses.

``load_scenario(path, overrides)`` is the one place that knows every registry (profiles, assets,
strategies and their options, optimizers, executors, cost-model architectures), so lower layers never
import it. It also checks what depends on the model (a dropout ratio its depth cannot reach) from the
model's config file alone, before any weights load. Every failure is a one-line
:class:`~fleetsim.core.errors.InputError`; nothing runs before it passes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fleetsim.core.errors import InputError
from fleetsim.core.registry import Registry
from fleetsim.core.rng import Streams
from fleetsim.core.schedules import SCHEDULES
from fleetsim.costs.proxies import ARCHITECTURES, WEIGHT_BYTES
from fleetsim.policy.selection import SELECTORS
from fleetsim.policy.strategies import STRATEGIES
from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR, DeviceProfile, Trace, load_profiles
from fleetsim.spec.scenario import Scenario, StrategySpec, apply_overrides
from fleetsim.spec.schema import read_yaml_mapping, validate
from fleetsim.spec.shipped import BUILTIN_SCENARIOS_DIR
from fleetsim.train import assets
from fleetsim.train.data import label_codes, partition_problem
from fleetsim.train.datafiles import dataset_frames
from fleetsim.train.executors import EXECUTORS
from fleetsim.train.hardware import cuda_available
from fleetsim.train.models import architectures, count_blocks, max_positions
from fleetsim.train.optimizers import OPTIMIZERS
from fleetsim.world.population import draw_population
from fleetsim.world.traces import read_trace

__all__ = ["LoadedScenario", "load_scenario", "load_scenario_tree", "shipped_scenario"]


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with the profiles it names and the raw tree it came from."""

    scenario: Scenario
    path: Path
    profiles: dict[str, DeviceProfile]
    raw: dict[str, Any]

    def resolved(self) -> dict[str, Any]:
        """The scenario as it runs: overrides applied and every default filled in, the strategy's options
        included (what ``scenario.resolved.yaml`` holds)."""
        out = self.scenario.model_dump(mode="json")
        cls = STRATEGIES[self.scenario.strategy.name]
        options = cls.resolved_options(cls.Options.model_validate(self.scenario.strategy.options))
        out["strategy"]["options"] = options.model_dump(mode="json")
        selector = SELECTORS[self.scenario.selection.name]
        out["selection"]["options"] = selector.Options.model_validate(self.scenario.selection.options).model_dump(
            mode="json"
        )
        return {"scenario_file": str(self.path), **out}

    def dataset_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test) frames of the scenario's dataset (own files relative to the scenario; the held-out
        rows drawn from the scenario's seed)."""
        rng = Streams(self.scenario.seed).generator("dataset-split")
        sc = self.scenario
        return dataset_frames(sc.dataset, self.path.parent, self.path, rng, label_optional=sc.language_model)

    def composition(self) -> list[tuple[str, DeviceProfile, int]]:
        """(profile id, profile, count) per fleet group, a group's own availability applied."""
        out = []
        streams = Streams(self.scenario.seed)
        for i, entry in enumerate(self.scenario.fleet):
            profile = entry.group_profile(self.profiles[entry.profile_id], self.path.parent)
            if entry.population is None:
                out.append((entry.profile_id, profile, entry.count))
            else:
                rng = streams.generator("population", i)
                out.extend(draw_population(entry.population, entry.profile_id, profile, entry.count, rng))
        return out


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> LoadedScenario:
    """Read, override, validate and cross-check a scenario file.

    Raises
    ------
    InputError
        for any mistake, naming the file and the field path.
    """
    path = shipped_scenario(Path(path))
    _plugins_importable_from(path.resolve().parent)
    return load_scenario_tree(read_yaml_mapping(path), path, overrides)


def shipped_scenario(path: Path) -> Path:
    """``path``, or — when no such file exists and it is a bare name like ``tiny`` or ``tiny.yaml`` — the
    example scenario of that name shipped with fleetsim."""
    if path.is_file() or path.parent != Path("."):
        return path
    shipped = BUILTIN_SCENARIOS_DIR / f"{path.stem}.yaml"
    return shipped if shipped.is_file() else path


def _plugins_importable_from(folder: Path) -> None:
    """Let ``module:Class`` plug-ins named by a scenario live beside it (appended: never shadows a package)."""
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def load_scenario_tree(tree: dict[str, Any], path: Path, overrides: list[str] | None = None) -> LoadedScenario:
    """Like :func:`load_scenario` for a scenario already read into ``tree``; ``path`` names it in errors and
    relative paths in it resolve against ``path.parent``."""
    raw = apply_overrides(tree, overrides or [])
    scenario = validate(Scenario, raw, path)
    profiles_dir = (path.parent / scenario.profiles_dir) if scenario.profiles_dir else _default_profiles_dir(path)
    profiles = load_profiles(
        profiles_dir,
        [e.profile_id for e in scenario.fleet],
        [f"fleet[{i}].{'profile' if e.profile else 'reference'}" for i, e in enumerate(scenario.fleet)],
        path,
    )
    return _cross_checked(scenario, path, profiles, raw)


def load_saved_scenario(file: str, raw: dict[str, Any], profiles: dict[str, Any]) -> LoadedScenario:
    """The scenario a run directory saved (its raw tree, its file's name, the profiles it used), checked
    again: the run resumes exactly as it started, whatever happened to the files since."""
    path = Path(file)
    scenario = validate(Scenario, raw, path)
    loaded = {pid: validate(DeviceProfile, tree, f"{path}: profile {pid}") for pid, tree in profiles.items()}
    return _cross_checked(scenario, path, loaded, raw)


def _cross_checked(
    scenario: Scenario, path: Path, profiles: dict[str, DeviceProfile], raw: dict[str, Any]
) -> LoadedScenario:
    for field in ("clients_per_round", "min_available"):  # devices a round needs, at most the fleet
        if getattr(scenario.rounds, field) > scenario.fleet_size:
            expected = f"at most the fleet size ({scenario.fleet_size})"
            raise InputError(path, f"rounds.{field}", expected, getattr(scenario.rounds, field))
    assets.check_model_id(scenario.model.id, path, "model.id")
    if scenario.dataset.id is not None:
        assets.check_dataset_id(scenario.dataset.id, path, "dataset.id")
    _check_name(OPTIMIZERS, scenario.training.optimizer.name, path, "training.optimizer.name")
    _check_name(EXECUTORS, scenario.executor.kind, path, "executor.kind")
    _check_executor(scenario, path)
    if scenario.cost_model is not None:
        _check_name(ARCHITECTURES, scenario.cost_model.arch, path, "cost_model.arch")
        _check_name(WEIGHT_BYTES, scenario.cost_model.weight_dtype, path, "cost_model.weight_dtype")
    model_dir = assets.model_dir(scenario.model.id)
    _check_task(scenario, model_dir, path)
    validate_strategy(scenario.strategy, path, count_blocks(model_dir))
    _check_name(SELECTORS, scenario.selection.name, path, "selection.name")
    validate(SELECTORS[scenario.selection.name].Options, scenario.selection.options, path, ("selection", "options"))
    longest = max_positions(model_dir)
    if longest is not None and scenario.training.seq_len > longest:
        raise InputError(
            path, "training.seq_len", f"at most {longest} (the model's longest input)", scenario.training.seq_len
        )
    loaded = LoadedScenario(scenario=scenario, path=path, profiles=profiles, raw=raw)
    frames = loaded.dataset_frames()  # a missing file or column is an input error now
    if scenario.training.trains:  # systems mode splits no data
        _check_partition(scenario, frames, path)
    _check_writable(Path(scenario.output_dir), path)
    for i, entry in enumerate(scenario.fleet):
        if isinstance(entry.availability, Trace) and not (path.parent / entry.availability.file).is_file():
            expected = f"an existing CSV or Parquet trace (relative to {path.parent})"
            raise InputError(path, f"fleet[{i}].availability.file", expected, entry.availability.file)
    composition = loaded.composition()
    for _, profile, _ in composition:
        if isinstance(profile.availability, Trace):
            read_trace(profile.availability.file)  # a broken trace is an input error now, not mid-run
    _check_outages(scenario, composition, path)
    return loaded


def _check_task(scenario: Scenario, model_dir: Path, file: Path) -> None:
    """A perplexity target only for a language model, and a language model only from a decoder."""
    if scenario.stop.target_perplexity is not None and not scenario.language_model:
        expected = "no perplexity target for task classification (set task: causal_lm, or target_accuracy)"
        raise InputError(file, "stop.target_perplexity", expected, scenario.stop.target_perplexity)
    if scenario.language_model:
        names = architectures(model_dir)
        if not any(n.endswith(("ForCausalLM", "LMHeadModel")) for n in names):
            expected = "a decoder with a language-model head for task causal_lm (e.g. smollm2-135m)"
            raise InputError(file, "model.id", expected, f"{scenario.model.id} ({', '.join(names) or 'no head'})")


def _check_outages(scenario: Scenario, composition: list[tuple[str, DeviceProfile, int]], file: Path) -> None:
    """Every tier and profile an outage names is in the fleet."""
    known = {"tiers": sorted({p.tier for _, p, _ in composition}), "profiles": sorted({i for i, _, _ in composition})}
    for i, outage in enumerate(scenario.outages):
        for key, names in (("tiers", outage.tiers), ("profiles", outage.profiles)):
            for j, name in enumerate(names or []):
                if name not in known[key]:
                    raise InputError(
                        file, f"outages[{i}].{key}[{j}]", f"one of the fleet's {key} ({', '.join(known[key])})", name
                    )


def _check_executor(scenario: Scenario, file: Path) -> None:
    """The executor's package is installed, and a GPU is there when one is asked for."""
    needs = EXECUTORS[scenario.executor.kind].needs
    if needs is not None and importlib.util.find_spec(needs) is None:
        expected = (
            f"an installed {needs} package for executor {scenario.executor.kind} (pip install 'fleetsim[{needs}]')"
        )
        raise InputError(file, "executor.kind", expected, scenario.executor.kind)
    if scenario.training.device == "cuda" and not cuda_available():
        raise InputError(file, "training.device", "auto or cpu (torch sees no CUDA device here)", "cuda")


def _check_partition(scenario: Scenario, frames: tuple[pd.DataFrame, pd.DataFrame], file: Path) -> None:
    """The dataset can be split over the fleet as the scenario asks (the same draw the run makes)."""
    train, test = frames
    if scenario.dataset.local_test_examples > len(test):
        expected = f"at most {len(test)} (the test split of {scenario.dataset.name})"
        raise InputError(file, "dataset.local_test_examples", expected, scenario.dataset.local_test_examples)
    _, labels = label_codes(train.label)
    rng = Streams(scenario.seed).generator("partition")
    users = train.user.to_numpy() if "user" in train else None
    problem = partition_problem(labels, scenario.fleet_size, scenario.dataset.partition, rng, users)
    if problem is not None:
        raise InputError(file, *problem)


def can_create_in(folder: Path) -> bool:
    """Whether files and folders can be made in ``folder`` (or in the existing folder it would be made in)."""
    try:
        existing = folder.resolve()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
            return False
        with tempfile.TemporaryFile(dir=existing):  # the access bits do not bind root, nor hold in /proc
            return True
    except (OSError, ValueError):  # e.g. a NUL byte in the name
        return False


def check_output(flag: str, path: Path, *, folder: bool) -> None:
    """``path`` can be written as a file (``folder`` False, replacing one that is there) or as a folder to
    write into; else an :class:`InputError` naming ``flag``."""
    if path.is_dir() != folder and path.exists():
        raise InputError(
            flag,
            "",
            f"a path for a {'folder' if folder else 'file'}",
            f"{path} (an existing {'file' if folder else 'folder'})",
        )
    if not can_create_in(path if folder else path.parent):
        raise InputError(flag, "", "a location this user can write", str(path))


def _check_writable(output_dir: Path, file: Path) -> None:
    """Run directories can be created in ``output_dir`` (or in the existing folder it would be made in)."""
    if not can_create_in(output_dir):
        raise InputError(file, "output_dir", "a folder this user can write run directories into", str(output_dir))


def validate_strategy(spec: StrategySpec, file: str | Path, n_blocks: int) -> None:
    """Check the strategy's name, its options and the dropout ratios they set against a model of
    ``n_blocks`` blocks; raise :class:`InputError` naming ``strategy.*``."""
    _check_name(STRATEGIES, spec.name, file, "strategy.name")
    cls = STRATEGIES[spec.name]
    options = validate(cls.Options, spec.options, file, prefix=("strategy", "options"))
    for field, dropout in cls.dropout_options(options).items():
        try:
            SCHEDULES[dropout.schedule].check(dropout, n_blocks)
        except ValueError as err:
            raise InputError(file, f"strategy.options.{field}", str(err), dropout.ratio) from None


def _check_name(known: Registry[Any] | dict[str, Any], name: str, file: str | Path, field: str) -> None:
    if isinstance(known, Registry):
        try:
            known[name]  # a plug-in loads here; one that cannot says why
            return
        except ValueError as err:
            raise InputError(file, field, str(err), name) from None
        except KeyError:
            pass
    if name not in known:
        plugins = (
            " or a plug-in (module:Class, or an entry point)" if isinstance(known, Registry) and known.group else ""
        )
        raise InputError(file, field, f"one of {', '.join(sorted(known))}{plugins}", name)


def _default_profiles_dir(scenario_path: Path) -> Path | None:
    """``../device_profiles`` beside the scenario's folder, when there is one besides the built-ins."""
    beside = scenario_path.resolve().parent.parent / "device_profiles"
    return beside if beside.is_dir() and beside.resolve() != BUILTIN_PROFILES_DIR.resolve() else None
