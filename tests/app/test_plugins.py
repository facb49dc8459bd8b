"""Plug-ins: a strategy from the user's own module, named module:Class, runs through the command line."""

from __future__ import annotations

import shutil

import pandas as pd
from conftest import ROOT

from fleetsim.app.cli import main

EXAMPLE = ROOT / "scenarios" / "plugins" / "fastest_first.py"


def test_a_strategy_from_a_module_beside_the_scenario_runs_from_the_command_line(write_scenario, tmp_path, capsys):
    shutil.copy(EXAMPLE, tmp_path / "my_methods.py")  # outside the package, beside the scenario
    path = write_scenario({"training": {"mode": "none"}, "rounds": {"clients_per_round": 2}})
    run_dir = tmp_path / "run"
    code = main(["run", str(path), "--run-dir", str(run_dir), "--set", "strategy.name=my_methods:FastestFirst"])
    assert code == 0, capsys.readouterr().err
    updates = pd.read_parquet(run_dir / "updates.parquet")
    assert set(updates.profile) == {"det_fast"}, "the two fast devices, every round"
    resolved = (run_dir / "scenario.resolved.yaml").read_text()
    assert "my_methods:FastestFirst" in resolved and "slowest_share: 0.0" in resolved


def test_a_plugin_that_does_not_import_or_is_not_a_strategy_is_a_one_line_error(write_scenario, tmp_path, capsys):
    (tmp_path / "not_a_strategy.py").write_text("class Thing:\n    pass\n")
    path = write_scenario()
    for name, expected in [
        ("nowhere:Strategy", "strategy.name: expected an importable strategy plug-in (ModuleNotFoundError"),
        ("not_a_strategy:Thing", "strategy.name: expected a strategy plug-in of the right type"),
        ("not_a_strategy:Missing", "strategy.name: expected an importable strategy plug-in (AttributeError"),
    ]:
        assert main(["run", str(path), "--set", f"strategy.name={name}"]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1
