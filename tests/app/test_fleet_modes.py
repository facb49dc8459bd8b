"""Round modes, systems mode and populations through the whole runner (real model, tiny sizes)."""

from __future__ import annotations

import json

import pytest

from fleetsim.app.loading import load_scenario
from fleetsim.app.runner import RunInterrupted, resume_run, run_scenario
from fleetsim.core.errors import InputError
from fleetsim.train.executors import Executor

ASYNC = {"mode": "async", "clients_per_round": 2, "concurrency": 3, "deadline_s": 1000.0}


def test_async_rounds_train_for_real_and_record_staleness(write_scenario, run):
    result, frames = run(write_scenario({"rounds": ASYNC, "stop": {"max_rounds": 3}}))
    rounds, updates = frames["rounds"], frames["updates"]
    assert len(rounds) == 3 and (rounds.n_delivered == 2).all() and rounds.accuracy.notna().all()
    assert updates[updates.outcome == "delivered"].trained.all()
    assert {"staleness", "staleness_weight"} <= set(updates.columns) and updates.staleness.min() == 0
    assert result.summary["rounds_mode"] == "async"


def test_an_interrupted_async_run_says_it_cannot_resume(write_scenario, tmp_path):
    def stop_in_round_2(inner: Executor) -> Executor:
        class Stopper(Executor):
            def run(self, plans, states, work):
                if plans[0].round_idx == 1:  # round 2
                    raise KeyboardInterrupt
                return inner.run(plans, states, work)

            def close(self) -> None:
                inner.close()

        return Stopper()

    loaded = load_scenario(write_scenario({"rounds": ASYNC, "stop": {"max_rounds": 3}}))
    with pytest.raises(RunInterrupted):
        run_scenario(loaded, run_dir=tmp_path / "stopped", progress=False, wrap_executor=stop_in_round_2)
    with pytest.raises(InputError, match=r"rounds\.mode: expected a synchronous or over-committed run"):
        resume_run(tmp_path / "stopped", progress=False)


def test_systems_mode_with_a_population_diurnal_fleet_trains_nothing_and_says_so(write_scenario, run):
    fleet = [
        {
            "population": "ai_benchmark_2019",
            "reference": "det_fast",
            "count": 3000,
            "availability": {"kind": "diurnal", "utc_offsets_h": [-6.0, 0.0, 6.0]},
        }
    ]
    changes = {
        "fleet": fleet,
        "training": {"mode": "none"},
        "rounds": {**ASYNC, "clients_per_round": 10, "concurrency": 40, "commit_every": 5},
        "stop": {"max_rounds": None, "max_sim_time_s": 30.0},
        "selection": {"name": "deadline_aware"},
    }
    result, frames = run(write_scenario(changes))
    summary, updates = result.summary, frames["updates"]
    assert summary["mode"].startswith("systems") and summary["final_accuracy"] is None
    assert summary["host_time_s"]["training"] == 0.0 and not updates.trained.any()
    assert summary["fleet_size"] == 3000 and updates.profile.str.startswith("ai_benchmark_2019[").all()
    assert len(frames["rounds"]) > 10 and frames["rounds"].accuracy.isna().all()
    saved = json.loads((result.run_dir / "summary.json").read_text())
    assert saved["mode"] == summary["mode"]
