"""The analysis notebooks run headlessly on a tiny run; report and compare write what they should."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import ROOT
from nbclient import NotebookClient

from fleetsim.app.cli import main

NOTEBOOKS = sorted((ROOT / "analysis").glob("*.ipynb"))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from fleetsim.app.loading import load_scenario
    from fleetsim.app.runner import run_scenario

    out = tmp_path_factory.mktemp("runs")
    dirs = []
    for strategy in ("fedlora", "droppeft"):
        loaded = load_scenario(ROOT / "scenarios" / "tiny.yaml", [f"strategy.name={strategy}", f"output_dir={out}"])
        dirs.append(run_scenario(loaded, progress=False, label=strategy).run_dir)
    return dirs


def test_notebooks_are_stored_without_outputs():
    assert len(NOTEBOOKS) == 5
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        assert "/work" not in path.read_text() and "/tmp" not in path.read_text(), "no hard-coded paths"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_and_every_plot_renders_inline(path, two_runs, monkeypatch):
    monkeypatch.setenv("FLEETSIM_RUN_DIR", str(two_runs[1]))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    plotting = [c for c in nb.cells if c.cell_type == "code" and "report.plot_" in c.source]
    assert plotting, "every analysis notebook plots"
    for cell in plotting:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert images, f"{path.name}: no image/png output from {cell.source.splitlines()[0]!r}"


def test_report_writes_every_figure(two_runs, tmp_path, capsys):
    assert main(["report", str(two_runs[1]), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["configurator.png", "convergence.png", "memory.png", "participation.png", "time_breakdown.png", "report.md"]
    )
    assert all(p.stat().st_size > 10_000 for p in tmp_path.glob("*.png"))
    assert main(["report", str(two_runs[0]), "--out", str(tmp_path / "plain")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "plain").glob("*.png"))
    assert "configurator.png" not in drawn and "convergence.png" in drawn, "no configurator plot without one"


def test_compare_table_matches_the_summaries(two_runs, tmp_path, capsys):
    assert main(["compare", *map(str, two_runs), "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert (tmp_path / "accuracy_vs_time.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    for run_dir, row in zip(two_runs, table.itertuples(), strict=True):
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
        assert row.run == summary["label"] and row.strategy == summary["strategy"]
        assert row.final_accuracy == pytest.approx(summary["final_accuracy"])
        assert row.rounds == summary["rounds"] and row.delivered == summary["updates_delivered"]
        assert row.energy_wh == pytest.approx(summary["device_energy_j"] / 3600)
        assert row.traffic_mb == pytest.approx((summary["bytes_down"] + summary["bytes_up"]) / 1e6)
        assert row.run in printed


def test_load_runs_stacks_tables_with_a_run_column(two_runs):
    import fleetsim

    runs = fleetsim.load_runs(two_runs)
    assert set(runs.rounds.run) == {"fedlora", "droppeft"}
    assert list(runs.updates.columns[:1]) == ["run"] and len(runs.summaries) == 2
    assert os.fspath(runs.runs[0].path) == os.fspath(two_runs[0])
    assert runs.runs[0].extra == {} and "bandit" in runs.runs[1].extra, "the strategy's own tables load too"
    assert {"round", "arm"} <= set(runs.runs[1].extra["bandit"].columns)


def test_compare_baseline_is_a_run_label_or_a_strategy(two_runs, tmp_path, capsys):
    assert main(["compare", *map(str, two_runs), "--out", str(tmp_path / "a"), "--baseline", "droppeft"]) == 0
    table = pd.read_csv(tmp_path / "a" / "comparison.csv").set_index("run")
    assert table.loc["droppeft", "memory_saving_vs_baseline"] == 0.0
    assert main(["compare", *map(str, two_runs), "--out", str(tmp_path / "b"), "--baseline", "fedavg"]) == 2
    err = capsys.readouterr().err.strip()
    known = "a run label (fedlora, droppeft) or a strategy (droppeft, fedlora)"
    assert err == f"fleetsim: error: --baseline: expected {known}, got 'fedavg'"


def test_the_resolved_scenario_records_every_default(two_runs):
    import yaml

    resolved = yaml.safe_load((Path(two_runs[1]) / "scenario.resolved.yaml").read_text())
    options = resolved["strategy"]["options"]
    assert resolved["strategy"]["name"] == "droppeft" and options["arms"] == [0.5, 0.67]
    assert options["policy"] == "sw_ucb" and options["policy_params"] == {"c": 0.5, "window": 40}
    assert options["reward"] == "loss_drop_per_s" and resolved["executor"]["kind"] == "inline"


def test_the_summary_says_what_the_configurator_chose_and_only_with_one(two_runs):
    plain, dropped = (json.loads((d / "summary.json").read_text()) for d in two_runs)
    assert "configurator" not in plain
    conf = dropped["configurator"]
    updates = pd.read_parquet(two_runs[1] / "updates.parquet")
    first = updates[updates["round"] == 1]
    for tier, ratios in conf["dropout_ratio_by_tier"].items():
        chosen = first[first.tier == tier].configured_dropout_ratio
        assert ratios["first"] == (pytest.approx(chosen.mean()) if len(chosen) else None)  # None: not in round 1
    assert conf["rounds_each"] == 1 and conf["round_time_s"]["first"] > 0
