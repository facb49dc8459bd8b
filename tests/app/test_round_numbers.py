"""Rounds are numbered from 1 wherever a user reads them (tables, ``summary.json``), as in Flower and FedScale;
a run committed while rounds were numbered from 0 resumes with its rows renumbered."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fleetsim.app.loading import load_scenario
from fleetsim.app.runner import RunInterrupted, resume_run, run_scenario
from fleetsim.sim.simulation import Simulation


def test_the_first_round_is_round_1_and_round_to_target_is_the_round_that_reached_it(write_scenario, run):
    # Evaluated every second round (rounds 2 and 3, the last); a target just above 0 is reached at the first
    # evaluation.
    changes = {
        "stop": {"max_rounds": 3, "target_accuracy": 1e-6, "continue_after_target": True},
        "evaluation": {"every_rounds": 2},
    }
    result, frames = run(write_scenario(changes))
    rounds = frames["rounds"]
    assert rounds["round"].tolist() == [1, 2, 3] and frames["updates"]["round"].min() == 1
    assert rounds.accuracy.notna().tolist() == [False, True, True]
    reached = rounds[rounds.accuracy >= 1e-6]
    assert result.summary["round_to_target"] == reached["round"].iloc[0] == 2
    assert result.summary["time_to_target_s"] == reached.end_s.iloc[0]


def test_a_run_committed_with_rounds_from_0_resumes_numbered_from_1(write_scenario, tmp_path, monkeypatch):
    path = write_scenario({"training": {"mode": "none"}, "stop": {"max_rounds": 3}})
    run_scenario(load_scenario(path), run_dir=tmp_path / "reference", progress=False)
    expected = {name: pd.read_parquet(tmp_path / "reference" / f"{name}.parquet") for name in ("rounds", "updates")}

    ended = Simulation.round_ended

    def stop_after_two(self: Simulation, end_s: float, last: bool) -> None:
        ended(self, end_s, last)
        self.stop_requested = self.stop_requested or self.state.round_idx == 2

    monkeypatch.setattr(Simulation, "round_ended", stop_after_two)
    run_dir = tmp_path / "old"
    with pytest.raises(RunInterrupted):
        run_scenario(load_scenario(path), run_dir=run_dir, progress=False)
    monkeypatch.undo()
    # Make it look committed by an older fleetsim: rows numbered from 0, no "first_round" in the checkpoint.
    pointer = run_dir / "checkpoint.json"
    meta = json.loads(pointer.read_text())
    assert meta.pop("first_round") == 1 and meta["parts"] == 2
    pointer.write_text(json.dumps(meta))
    for part in sorted((run_dir / "parts").glob("*.json")):
        rows = json.loads(part.read_text())
        part.write_text(json.dumps({n: [{**r, "round": r["round"] - 1} for r in t] for n, t in rows.items()}))

    resume_run(run_dir, progress=False)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(pd.read_parquet(run_dir / f"{name}.parquet"), frame)
    assert expected["rounds"]["round"].tolist() == [1, 2, 3]
