"""Studies: several variants of one scenario, each run over the same seeds, then compared with intervals.

A study file names a base scenario, overrides shared by every variant, the variants' own overrides and,
optionally, a list of seeds every variant runs with (a seed fixes the fleet draw, the data partition and
every random choice, so runs of one seed differ only by the method)::

    name: droppeft_seeds
    scenario: ../phones_mixed.yaml        # relative to this file
    overrides: [stop.max_rounds=25]
    baseline: fedlora
    seeds: [1, 2, 3, 4, 5]
    variants:
      - {label: fedlora, set: [strategy.name=fedlora]}
      - {label: droppeft, set: [strategy.name=droppeft]}

Every run is validated before the first one starts. Runs go to ``<output_dir>/<name>-<time>/<label>/`` (or
``<label>/seed-<s>/`` with seeds), the comparison (:mod:`fleetsim.io.compare`) next to them. Runs may go in
parallel worker processes (``jobs``). A study stopped part-way resumes: finished runs are kept, unfinished
ones resume from their checkpoints, the rest start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydantic import Field, NonNegativeInt

from fleetsim.app.loading import LoadedScenario, load_scenario
from fleetsim.core.errors import InputError
from fleetsim.core.jsonfile import read_json_object
from fleetsim.io.compare import write_comparison
from fleetsim.io.rundir import RunDir, reserve_run_dir
from fleetsim.io.runs import load_run
from fleetsim.spec.schema import Strict, read_yaml_mapping, validate

__all__ = ["StudyRun", "StudySpec", "load_study", "resume_study", "run_seeds", "run_study"]


class Variant(Strict):
    label: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    set: list[str] = Field(default_factory=list, description="key=value overrides of this variant")


class StudySpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    scenario: str = Field(description="the base scenario, relative to the study file")
    overrides: list[str] = Field(default_factory=list)
    baseline: str | None = None
    seeds: list[NonNegativeInt] | None = Field(None, min_length=1, description="every variant runs each seed")
    variants: list[Variant] = Field(min_length=1)


@dataclass(frozen=True)
class StudyRun:
    """One run of a study: a variant, a seed, its scenario and its folder in the study directory."""

    label: str
    seed: int
    loaded: LoadedScenario
    overrides: tuple[str, ...]
    folder: str


def _study_runs(spec: StudySpec, base: Path, extra: Sequence[str], file: Path) -> list[StudyRun]:
    labels = [v.label for v in spec.variants]
    if len(set(labels)) != len(labels):
        raise InputError(file, "variants", "unique labels", labels)
    if spec.baseline is not None and spec.baseline not in labels:
        raise InputError(file, "baseline", f"one of the labels ({', '.join(labels)})", spec.baseline)
    if spec.seeds is not None and len(set(spec.seeds)) != len(spec.seeds):
        raise InputError(file, "seeds", "distinct seeds", spec.seeds)
    scenario_path = (base / spec.scenario).resolve()
    if not scenario_path.is_file():
        raise InputError(file, "scenario", f"an existing scenario file (relative to {base})", spec.scenario)
    runs = []
    for index, variant in enumerate(spec.variants):
        seeds: list[int | None] = list(spec.seeds) if spec.seeds else [None]
        for seed in seeds:
            overrides = (*spec.overrides, *variant.set, *extra, *([] if seed is None else [f"seed={seed}"]))
            try:
                loaded = load_scenario(scenario_path, list(overrides))
            except InputError as err:  # say which variant of which study, then what the scenario said
                where = f"variants[{index}] ({variant.label})"
                raise InputError(file, where, err.lines[0], raw=True, also=err.also) from None
            folder = variant.label if seed is None else f"{variant.label}/seed-{seed}"
            runs.append(StudyRun(variant.label, loaded.scenario.seed, loaded, overrides, folder))
    return runs


def load_study(path: Path, extra: Sequence[str] = ()) -> tuple[StudySpec, list[StudyRun]]:
    """Validate the study and every run's scenario; nothing runs."""
    spec = validate(StudySpec, read_yaml_mapping(path), path)
    return spec, _study_runs(spec, path.parent, extra, path)


def run_study(
    path: Path, extra: Sequence[str] = (), progress: bool = True, jobs: int = 1
) -> tuple[Path, dict[str, Path]]:
    """Run every run of the study file ``path``; return the study directory and the comparison files."""
    spec, runs = load_study(path, extra)
    return _execute(spec, path.parent, extra, runs, None, progress, jobs)


def run_seeds(
    scenario: Path, overrides: Sequence[str], seeds: Sequence[int], progress: bool = True, jobs: int = 1
) -> tuple[Path, dict[str, Path]]:
    """One scenario over several seeds: a study of one variant (``fleetsim run --seeds``)."""
    loaded = load_scenario(scenario, list(overrides))
    name = f"{loaded.scenario.name}-seeds"
    spec = StudySpec(
        name=name,
        scenario=scenario.resolve().name,
        overrides=list(overrides),
        seeds=list(seeds),
        variants=[Variant(label=loaded.scenario.strategy.name)],
    )
    runs = _study_runs(spec, scenario.resolve().parent, (), scenario)
    return _execute(spec, scenario.resolve().parent, (), runs, None, progress, jobs)


def resume_study(root: Path, progress: bool = True, jobs: int = 1) -> tuple[Path, dict[str, Path]]:
    """Go on with a stopped study: keep finished runs, resume unfinished ones, start the rest."""
    record = root / "study.json"
    if not record.is_file():
        raise InputError(root, "", "a study directory (with study.json)", str(root))
    saved = read_json_object(record, ("spec", "base", "extra"))
    spec = StudySpec.model_validate(saved["spec"])
    base, extra = Path(saved["base"]), tuple(saved["extra"])
    runs = _study_runs(spec, base, extra, root / "study.json")
    return _execute(spec, base, extra, runs, root, progress, jobs)


def _execute(
    spec: StudySpec,
    base: Path,
    extra: Sequence[str],
    runs: list[StudyRun],
    root: Path | None,
    progress: bool,
    jobs: int,
) -> tuple[Path, dict[str, Path]]:
    if root is None:
        root = reserve_run_dir(Path(runs[0].loaded.scenario.output_dir), spec.name)
        study = {"spec": spec.model_dump(mode="json"), "base": str(base.resolve()), "extra": list(extra)}
        (root / "study.json").write_text(json.dumps(study, indent=2))
    todo = [r for r in runs if RunDir(root / r.folder).status() != "complete"]
    if jobs <= 1:
        for run in todo:
            if progress:
                print(f"== {spec.name}: {run.folder}", flush=True)
            _one(run.loaded.path, run.overrides, root / run.folder, run.label, progress, None)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(_one, r.loaded.path, r.overrides, root / r.folder, r.label, False, threads) for r in todo
            ]
            for run, future in zip(todo, futures, strict=True):
                future.result()
                if progress:
                    print(f"== {spec.name}: {run.folder} done", flush=True)
    results = [load_run(root / r.folder) for r in runs]
    return root, write_comparison(results, root, baseline=spec.baseline)


def _one(
    scenario: Path, overrides: Sequence[str], run_dir: Path, label: str, progress: bool, threads: int | None
) -> dict[str, Any]:
    """Run (or resume) one run of a study; in a worker process, with ``threads`` torch threads."""
    from fleetsim.app.runner import resume_run, run_scenario

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if run_dir.exists():
        return resume_run(run_dir, progress=progress).summary
    loaded = load_scenario(scenario, list(overrides))
    return run_scenario(loaded, run_dir=run_dir, progress=progress, label=label).summary
