"""Runs survive: a run killed (SIGKILL) at random moments and resumed each time, or stopped with Ctrl-C and
resumed, ends with the same tables as a run never stopped, byte for byte; runs started together into one
folder each get their own directory."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ROOT

TINY = ROOT / "scenarios" / "tiny.yaml"
# Four rounds of DropPEFT with a policy that draws random numbers: the checkpoint must hold the bandit's
# generator, the personal tensors and the fleet's availability for the tables to match.
SETTINGS = [
    "strategy.name=droppeft",
    "strategy.options.policy=epsilon_greedy",
    "stop.max_rounds=4",
    "training.local_steps=2",
]
TABLES = ("rounds", "updates", "events", "bandit")


def _start(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "fleetsim", "run", *args, "--quiet"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _fresh(run_dir: Path) -> subprocess.Popen[str]:
    return _start(str(TINY), "--run-dir", str(run_dir), *[a for s in SETTINGS for a in ("--set", s)])


def _go_on(run_dir: Path) -> subprocess.Popen[str]:
    """Resume, or start again if the process was killed before it had set up its run directory."""
    if (run_dir / "resume" / "profiles.json").is_file():
        return _start("--resume", str(run_dir))
    shutil.rmtree(run_dir, ignore_errors=True)
    return _fresh(run_dir)


def _tables(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / f"{name}.parquet").read_bytes() for name in TABLES}


def _committed(run_dir: Path) -> int:
    """Rounds committed so far (parts written)."""
    return len(list((run_dir / "parts").glob("*.json"))) if (run_dir / "parts").is_dir() else 0


def _status(run_dir: Path) -> str | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text())["status"] if path.is_file() else None


class Reference(NamedTuple):
    """A run never stopped, and its pace on this machine (wall seconds), so kills can be timed in its units."""

    tables: dict[str, bytes]
    first_commit_s: float  # from the process's start to its first committed round
    round_s: float  # the shortest time between two of its commits


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    started = time.monotonic()
    done = _fresh(run_dir)
    committed_at: dict[int, float] = {}
    while done.poll() is None:
        committed_at.setdefault(_committed(run_dir), time.monotonic() - started)
        time.sleep(0.01)
    assert done.wait() == 0, done.stderr.read() if done.stderr else ""
    times = [committed_at[k] for k in sorted(committed_at) if k >= 1]
    assert len(times) >= 3, f"the reference run's commits were not seen: {committed_at}"
    return Reference(_tables(run_dir), times[0], min(b - a for a, b in pairwise(times)))


def test_killed_at_five_random_moments_and_resumed_each_time_gives_the_same_tables(reference, tmp_path):
    expected = reference.tables
    run_dir = tmp_path / "run"
    # Each process is killed at a random moment of the run: once a random number of rounds is committed, after
    # a random extra delay — during start-up, training, evaluation, or while rows or a checkpoint are written.
    # Delays are fractions of the reference run's pace on this machine (its time to the first commit, or its
    # shortest round), so a kill after round k lands before the run ends on a fast machine as on a slow one.
    rng = random.Random(20261125)
    moments = sorted((rng.randrange(4), rng.random()) for _ in range(5))
    process = _fresh(run_dir)
    seen = []
    for committed, fraction in moments:
        while _committed(run_dir) < committed and process.poll() is None:
            time.sleep(0.01)
        time.sleep(fraction * (reference.first_commit_s if committed == 0 else reference.round_s))
        process.kill()  # SIGKILL: nothing of fleetsim runs after this
        process.wait()
        seen.append((_status(run_dir), _committed(run_dir)))
        process = _go_on(run_dir)
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    assert _status(run_dir) == "complete"
    assert _tables(run_dir) == expected
    assert sum(status == "running" for status, _ in seen) >= 3, f"kills must land mid-run: {seen}"
    assert not (run_dir / "parts").exists() and not (run_dir / "checkpoint.json").exists()


def test_ctrl_c_stops_after_the_round_and_the_run_resumes(reference, tmp_path):
    expected = reference.tables
    run_dir = tmp_path / "run"
    process = _fresh(run_dir)
    while not (run_dir / "parts" / "00001.json").is_file():
        assert process.poll() is None, "the run ended before two rounds were committed"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert f"resume with: fleetsim run --resume {run_dir}" in err and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["rounds_committed"] >= 2
    assert summary["resume"] == f"fleetsim run --resume {run_dir}"
    resumed = _start("--resume", str(run_dir))
    assert resumed.wait(timeout=300) == 0
    assert _tables(run_dir) == expected


def test_runs_started_together_into_one_folder_get_distinct_directories(tmp_path):
    # Systems mode on one thread each: two processes sharing two cores, nothing here needs training.
    settings = [f"output_dir={tmp_path}", "stop.max_rounds=1", "training.mode=none", "executor.threads_per_worker=1"]
    first, second = (_start(str(TINY), *[a for s in settings for a in ("--set", s)]) for _ in range(2))
    outputs = [p.communicate(timeout=300)[0].strip() for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0
    assert len(set(outputs)) == 2 and all(Path(o).parent == tmp_path for o in outputs)
    assert all(_status(Path(o)) == "complete" for o in outputs)


def test_a_name_taken_in_the_same_second_gets_a_suffix(tmp_path):
    from fleetsim.io.rundir import reserve_run_dir

    made = [reserve_run_dir(tmp_path, "tiny") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() for p in made)
