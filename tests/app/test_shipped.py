"""Everything shipped loads: every profile, every example scenario and every study (nothing runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetsim.app.loading import load_scenario
from fleetsim.app.study import load_study
from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR, load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(BUILTIN_PROFILES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_profile_loads(path: Path) -> None:
    assert load_profile(path).sources


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_scenario_loads(path: Path, tmp_path: Path) -> None:
    loaded = load_scenario(path, [f"output_dir={tmp_path}"])
    assert loaded.scenario.fleet_size == sum(count for _, _, count in loaded.composition())


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios" / "studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_study_loads(path: Path) -> None:
    spec, runs = load_study(path)
    assert runs and len(runs) == len(spec.variants) * len(spec.seeds or [None])
