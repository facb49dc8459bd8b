"""The Python API: ``fleetsim.run`` takes a file, a mapping or a Scenario, with list or mapping overrides."""

from __future__ import annotations

import pytest
from conftest import DETERMINISTIC, deep_update

import fleetsim
from fleetsim.core.errors import InputError
from fleetsim.spec.scenario import Scenario

SYSTEMS = {"training": {"mode": "none"}, "stop": {"max_rounds": 2}}


def test_run_from_a_mapping_and_from_a_scenario_give_the_same_tables(tmp_path):
    tree = deep_update(DETERMINISTIC, {**SYSTEMS, "output_dir": str(tmp_path)})
    from_dict = fleetsim.run(tree, {"seed": 5, "rounds.clients_per_round": 3}, run_dir=tmp_path / "a")
    scenario = Scenario.model_validate(tree)
    from_object = fleetsim.run(scenario, ["seed=5", "rounds.clients_per_round=3"], run_dir=tmp_path / "b")
    assert from_dict.summary["seed"] == 5 and len(from_dict.rounds) == 2
    assert (from_dict.updates.groupby("round").size() == 3).all()
    cols = ["round", "device_id", "outcome", "start_s", "end_s"]
    assert from_dict.updates[cols].equals(from_object.updates[cols])
    assert from_dict.scenario["rounds"]["clients_per_round"] == 3


def test_run_from_a_file(write_scenario, tmp_path):
    run = fleetsim.run(write_scenario(SYSTEMS), run_dir=tmp_path / "c")
    assert run.path == tmp_path / "c" and run.summary["mode"].startswith("systems")


def test_a_mistake_in_a_mapping_names_the_field():
    with pytest.raises(InputError, match=r"<scenario from Python>: training.batch_size: expected a valid integer"):
        fleetsim.run(deep_update(DETERMINISTIC, {"training": {"batch_size": "many"}}))
