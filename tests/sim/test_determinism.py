"""One seed drives everything: same seed → identical tables; another seed → different ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import FIXTURE_PROFILES, ROOT

TINY = ROOT / "scenarios" / "tiny.yaml"


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    from fleetsim.app.loading import load_scenario
    from fleetsim.app.runner import run_scenario

    out = tmp_path_factory.mktemp("det")
    frames = []
    for seed in (1, 1, 2):
        loaded = load_scenario(TINY, [f"seed={seed}", f"output_dir={out}"])
        result = run_scenario(loaded, progress=False)
        frames.append({n: pd.read_parquet(result.run_dir / f"{n}.parquet") for n in ("rounds", "updates", "events")})
    return frames


@pytest.mark.parametrize("table", ["rounds", "updates", "events"])
def test_same_seed_gives_identical_tables(three_runs, table):
    pd.testing.assert_frame_equal(three_runs[0][table], three_runs[1][table], check_exact=True)


@pytest.mark.parametrize("table", ["rounds", "updates"])
def test_different_seed_gives_different_tables(three_runs, table):
    assert not three_runs[0][table].equals(three_runs[2][table])


def test_parquet_files_are_byte_identical_for_the_same_seed(tmp_path: Path):
    from fleetsim.app.loading import load_scenario
    from fleetsim.app.runner import run_scenario

    blobs = []
    for i in range(2):
        loaded = load_scenario(TINY, ["stop.max_rounds=1", f"output_dir={tmp_path / str(i)}"])
        blobs.append((run_scenario(loaded, progress=False).run_dir / "updates.parquet").read_bytes())
    assert blobs[0] == blobs[1]


def test_flaky_devices_lose_updates_for_the_right_reasons(write_scenario, run):
    # Devices that churn every ~20 s and fail 30% of updates: losses must carry their reason and time.
    scenario = write_scenario(
        {
            "fleet": [{"profile": "flaky", "count": 12}],
            "rounds": {"clients_per_round": 6, "retry_s": 5.0},
            "stop": {"max_rounds": 6},
            "profiles_dir": str(FIXTURE_PROFILES),
        }
    )
    _, frames = run(scenario)
    updates, events = frames["updates"], frames["events"]
    assert {"offline", "failure"} <= set(updates.outcome)
    for _, row in updates[updates.outcome == "offline"].iterrows():
        went = events[(events.device_id == row.device_id) & (events.kind == "offline")]
        assert (went.time_s == row.end_s).any(), "an offline loss happens when the device goes offline"
    lost = updates[updates.outcome != "delivered"]
    assert (~lost.trained).all() and lost.train_loss_mean.isna().all()
    # An availability change is logged against the round it happened in (or the one being waited for).
    changes = events[events.kind.isin(["online", "offline"]) & (events.detail == "")]
    in_progress = [(frames["rounds"].end_s < t).sum() + 1 for t in changes.time_s]  # rounds ended before, + 1
    assert len(changes) > 10 and changes["round"].tolist() == in_progress
    assert (lost.end_s < lost.start_s + lost.download_s + lost.compute_s + lost.upload_s).all()


def _run_with_threads(threads: int, out: Path) -> subprocess.Popen[str]:
    code = (
        f"import torch; torch.set_num_threads({threads})\n"
        "from fleetsim.app.cli import main\n"
        f"main(['run', {str(TINY)!r}, '--quiet', '--run-dir', {str(out)!r}, '--set', 'strategy.name=droppeft',"
        " '--set', 'strategy.options.arms=[0.0, 0.3, 0.5]', '--set', 'stop.max_rounds=2',"
        " '--set', 'training.batch_size=16', '--set', 'training.seq_len=64'])\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _tables(process: subprocess.Popen[str], out: Path) -> dict[str, pd.DataFrame]:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    return {n: pd.read_parquet(out / f"{n}.parquet") for n in ("rounds", "updates", "events", "bandit")}


# Numbers the host computes (losses, accuracies, rewards) may differ in their last digits between thread counts;
# everything simulated and every decision must not.
HOST_COLUMNS = {
    "rounds": ["accuracy", "eval_loss", "train_loss_mean", "personalized_accuracy"],
    "updates": ["train_loss_first", "train_loss_last", "train_loss_mean", "reward"],
    "bandit": ["mean_reward", "score"],
    "events": [],
}


def test_one_and_two_host_threads_give_the_same_simulation_and_decisions(tmp_path):
    runs = {n: _run_with_threads(n, tmp_path / str(n)) for n in (1, 2)}  # side by side
    one, two = (_tables(process, tmp_path / str(n)) for n, process in runs.items())
    for name, host in HOST_COLUMNS.items():
        pd.testing.assert_frame_equal(one[name].drop(columns=host), two[name].drop(columns=host), check_exact=True)
        pd.testing.assert_frame_equal(one[name][host], two[name][host], rtol=1e-4)
    assert one["updates"].arm.nunique() > 1, "the bandit made choices"
