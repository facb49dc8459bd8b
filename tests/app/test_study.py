"""Seeds: a scenario run over seeds (in worker processes or not, same tables), the comparison with intervals,
and a study that resumes where it stopped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from conftest import ROOT

from fleetsim.app.cli import main

TINY = ROOT / "scenarios" / "tiny.yaml"


def _seeds(tmp: Path, jobs: int, capsys) -> Path:
    """The tiny scenario over seeds 1 and 2 at one torch thread per run (inline or in ``jobs`` workers): some of
    torch's CPU kernels round differently at other thread counts (softmax's backward with AVX-512), so tables
    are byte-identical at equal threads per run (tests/sim/test_determinism.py covers 1 against 2 threads)."""
    args = ["run", str(TINY), "--seeds", "1,2", "--jobs", str(jobs), "--quiet", "--set", f"output_dir={tmp}"]
    assert main([*args, "--set", "stop.max_rounds=1", "--set", "executor.threads_per_worker=1"]) == 0
    (root,) = tmp.iterdir()
    return root


def test_seeds_in_worker_processes_give_the_same_tables_and_a_comparison_with_intervals(tmp_path, capsys):
    one, two = _seeds(tmp_path / "one", 1, capsys), _seeds(tmp_path / "two", 2, capsys)
    printed = capsys.readouterr().out
    for seed in (1, 2):
        for table in ("rounds", "updates", "events"):
            a = (one / "fedlora" / f"seed-{seed}" / f"{table}.parquet").read_bytes()
            assert a == (two / "fedlora" / f"seed-{seed}" / f"{table}.parquet").read_bytes(), (seed, table)
    variants = pd.read_csv(one / "variants.csv")
    assert variants.variant.tolist() == ["fedlora"] and variants.seeds.tolist() == [2]
    assert {"time_to_target_s_low", "acc_at_common_end_high", "speedup"} <= set(variants.columns)
    assert "| fedlora | 2 |" in printed and "95% percentile-bootstrap intervals" in printed
    per_run = pd.read_csv(one / "comparison.csv")
    assert sorted(per_run.seed) == [1, 2]


def test_a_study_resumes_and_runs_only_what_is_missing(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text(
        f"name: s\nscenario: {TINY}\noverrides: [stop.max_rounds=1, output_dir={tmp_path / 'out'}]\n"
        "seeds: [3, 4]\nvariants:\n  - {label: a, set: [strategy.name=fedlora]}\n"
    )
    assert main(["study", str(study), "--quiet"]) == 0
    (root,) = (tmp_path / "out").iterdir()
    kept = (root / "a" / "seed-3" / "updates.parquet").stat().st_mtime_ns
    redo = (root / "a" / "seed-4" / "updates.parquet").read_bytes()
    shutil.rmtree(root / "a" / "seed-4")
    assert main(["study", "--resume", str(root), "--quiet"]) == 0
    assert (root / "a" / "seed-3" / "updates.parquet").stat().st_mtime_ns == kept, "a finished run is kept"
    assert (root / "a" / "seed-4" / "updates.parquet").read_bytes() == redo, "a missing run runs again, the same"
    assert "| a | 2 | " in capsys.readouterr().out
