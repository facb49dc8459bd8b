"""Studies: several variants of one scenario (same fleet, data partition and seed), run and compared.

A study file names a base scenario, overrides shared by every variant, and the variants' own overrides::

    name: stld_fixed_ratios
    scenario: ../phones_mixed.yaml        # relative to this file
    overrides: [stop.max_rounds=25]
    baseline: fedlora
    variants:
      - {label: fedlora, set: [strategy.name=fedlora]}
      - {label: uniform-0.25, set: [strategy.name=layerdrop, strategy.options.ratio=0.25]}

Every variant is validated before the first one runs. Runs go to ``<output_dir>/<name>-<time>/<label>/``,
and the comparison table and curves (:mod:`fleetsim.io.compare`) next to them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field

from fleetsim.app.loading import LoadedScenario, load_scenario
from fleetsim.core.errors import InputError
from fleetsim.io.compare import write_comparison
from fleetsim.io.runs import load_run
from fleetsim.spec.schema import Strict, read_yaml_mapping, validate

__all__ = ["StudySpec", "load_study", "run_study"]


class Variant(Strict):
    label: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    set: list[str] = Field(default_factory=list, description="key=value overrides of this variant")


class StudySpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    scenario: str
    overrides: list[str] = Field(default_factory=list)
    baseline: str | None = None
    variants: list[Variant] = Field(min_length=1)


def load_study(path: Path, extra: list[str] | None = None) -> tuple[StudySpec, list[tuple[str, LoadedScenario]]]:
    """Validate the study and every variant's scenario; nothing runs."""
    spec = validate(StudySpec, read_yaml_mapping(path), path)
    labels = [v.label for v in spec.variants]
    if len(set(labels)) != len(labels):
        raise InputError(path, "variants", "unique labels", labels)
    if spec.baseline is not None and spec.baseline not in labels:
        raise InputError(path, "baseline", f"one of the labels ({', '.join(labels)})", spec.baseline)
    scenario_path = (path.parent / spec.scenario).resolve()
    loaded = [(v.label, load_scenario(scenario_path, [*spec.overrides, *v.set, *(extra or [])])) for v in spec.variants]
    return spec, loaded


def run_study(path: Path, extra: list[str] | None = None, progress: bool = True) -> tuple[Path, dict[str, Path]]:
    """Run every variant in order; return the study directory and the comparison files."""
    from fleetsim.app.runner import run_scenario

    spec, loaded = load_study(path, extra)
    root = Path(loaded[0][1].scenario.output_dir) / f"{spec.name}-{datetime.now():%Y%m%d-%H%M%S}"
    runs = []
    for label, scenario in loaded:
        if progress:
            print(f"== {spec.name}: {label}", flush=True)
        result = run_scenario(scenario, run_dir=root / label, progress=progress, label=label)
        runs.append(load_run(result.run_dir))
    return root, write_comparison(runs, root, baseline=spec.baseline)
