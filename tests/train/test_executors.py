"""Every executor gives the same tables; workers that die are named; where and how the host trains changes
accuracy columns at most, never simulated time or memory."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DETERMINISTIC, deep_update

from fleetsim.app.loading import load_scenario
from fleetsim.app.runner import RunFailed, resume_run, run_scenario
from fleetsim.train.executors import EXECUTORS, Executor, ProcessExecutor, longest_first
from fleetsim.train.hardware import cuda_available

# Eight devices per round, DropPEFT with a policy that draws random numbers, probes and personal layers:
# every start state, seed and decision must reach the workers exactly as inline.
MANY = {
    "fleet": [{"profile": "det_fast", "count": 4}, {"profile": "det_slow", "count": 4}],
    "rounds": {"clients_per_round": 8},
    "strategy": {"name": "droppeft", "options": {"policy": "epsilon_greedy"}},
}
TABLES = ("rounds", "updates", "events", "bandit")
ONE_THREAD = ["executor.threads_per_worker=1"]
SIMULATED = ["round", "device_id", "outcome", "start_s", "end_s", "compute_s", "flops", "peak_memory_bytes"]
HAS_RAY = importlib.util.find_spec("ray") is not None


def _hashes(run_dir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((run_dir / f"{name}.parquet").read_bytes()).hexdigest() for name in TABLES}


def test_longest_updates_are_handed_out_first():
    assert longest_first([1.0, 5.0, 3.0, 5.0]) == [1, 3, 2, 0]


def test_executors_are_registered():
    assert list(EXECUTORS) == ["inline", "process", "ray"]


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The round-heavy scenario, and the hashes of its tables trained inline at one thread."""
    folder = tmp_path_factory.mktemp("many")
    data = deep_update(DETERMINISTIC, {**MANY, "output_dir": str(folder / "runs")})
    path = folder / "many.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    inline = run_scenario(load_scenario(path, ONE_THREAD), progress=False)
    return path, _hashes(inline.run_dir)


@pytest.mark.parametrize(
    "kind", ["process", pytest.param("ray", marks=pytest.mark.skipif(not HAS_RAY, reason="ray not installed"))]
)
def test_workers_give_the_tables_of_inline_byte_for_byte(kind, many):
    scenario, expected = many
    loaded = load_scenario(scenario, [*ONE_THREAD, f"executor.kind={kind}", "executor.workers=2"])
    assert _hashes(run_scenario(loaded, progress=False).run_dir) == expected


def test_a_worker_that_dies_is_named_and_the_run_resumes_to_the_same_tables(many, tmp_path):
    scenario, expected = many

    def kill_in_round_2(inner: Executor) -> Executor:
        assert isinstance(inner, ProcessExecutor)

        class Killer(Executor):
            def run(self, plans, states, work):
                if plans[0].round_idx == 1:  # round 2
                    for pid in inner.worker_pids():
                        os.kill(pid, signal.SIGKILL)
                return inner.run(plans, states, work)

            def close(self):
                inner.close()

        return Killer()

    stopped = tmp_path / "stopped"
    loaded = load_scenario(scenario, [*ONE_THREAD, "executor.kind=process", "executor.workers=2"])
    with pytest.raises(RunFailed, match=r"a worker process died while training the update of device \d+ in round 2"):
        run_scenario(loaded, run_dir=stopped, progress=False, wrap_executor=kill_in_round_2)
    summary = json.loads((stopped / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "worker process died" in summary["reason"]
    assert summary["rounds_committed"] == 1
    assert _hashes(resume_run(stopped, progress=False).run_dir) == expected


def test_bf16_changes_no_simulated_column_of_fedlora(write_scenario, run):
    # (an adaptive strategy may decide differently on bf16 losses, and then its times differ too)
    scenario = write_scenario({"stop": {"max_rounds": 1}})
    _, fp32 = run(scenario)
    _, bf16 = run(scenario, ["training.precision=bf16"])
    pd.testing.assert_frame_equal(fp32["updates"][SIMULATED], bf16["updates"][SIMULATED], check_exact=True)
    assert bf16["rounds"]["accuracy"].notna().all()
    assert not fp32["updates"]["train_loss_last"].equals(bf16["updates"]["train_loss_last"]), "bf16 must be used"


@pytest.mark.skipif(not cuda_available(), reason="no CUDA device")
def test_cuda_training_changes_no_simulated_column(write_scenario, run):
    scenario = write_scenario()
    _, cpu = run(scenario, ["training.device=cpu"])
    _, gpu = run(scenario, ["training.device=cuda"])
    pd.testing.assert_frame_equal(cpu["updates"][SIMULATED], gpu["updates"][SIMULATED], check_exact=True)
    assert gpu["rounds"]["accuracy"].notna().all()


@pytest.mark.skipif(cuda_available(), reason="a CUDA device is here")
def test_asking_for_cuda_without_one_is_a_load_time_error(write_scenario):
    from fleetsim.core.errors import InputError

    scenario = write_scenario({"training": {"device": "cuda"}})
    with pytest.raises(InputError, match=r"training.device: expected auto or cpu \(torch sees no CUDA device here\)"):
        load_scenario(scenario)


def test_a_missing_ray_is_named_with_how_to_install_it(write_scenario, monkeypatch):
    from fleetsim.core.errors import InputError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    scenario = write_scenario({"executor": {"kind": "ray"}})
    with pytest.raises(InputError, match=r"executor.kind: expected an installed ray package .*fleetsim\[ray\]"):
        load_scenario(scenario)
