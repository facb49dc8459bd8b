"""Mistakes on the command line itself: one line, exit code 2, nothing written, and no work done first."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fleetsim.app.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "tiny", "--jobs", "2"], "fleetsim: error: --jobs: expected --seeds with it"),
        (["profiles", "--dir", "/nonexistent/profiles"], "fleetsim: error: --dir: expected a folder of device profile"),
        (
            ["calibrate", "--model", "minilm-l6", "--batch", "4", "--seq", "100000"],
            "fleetsim: error: --seq: expected at most 512 (the model's longest input), got 100000",
        ),
        (["schema", "--out", "/proc/nope/schema.json"], "fleetsim: error: --out: expected a location this user can"),
    ],
)
def test_a_bad_argument_is_one_line(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(expected) and "\n" not in err, err


def test_an_argument_argparse_rejects_is_one_line_too():
    done = subprocess.run(
        [sys.executable, "-m", "fleetsim", "run", "tiny", "--seeds", "1,x"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fleetsim: error: fleetsim run: argument --seeds: expected seeds as integers separated by commas, got '1,x' "
        "(see fleetsim run --help)"
    ]


def test_calibrate_checks_where_it_writes_before_measuring(tmp_path, capsys):
    folder = tmp_path / "profile.yaml"
    folder.mkdir()
    argv = ["calibrate", "--model", "minilm-l6", "--batch", "4", "--seq", "16", "--out", str(folder), "--force"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fleetsim: error: --out: expected a path for a file"), err


def test_report_into_a_file_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"status": "complete"}')
    blocker = tmp_path / "out.txt"
    blocker.write_text("mine")
    assert main(["report", str(run), "--out", str(blocker)]) == 2
    assert capsys.readouterr().err.strip().startswith("fleetsim: error: --out: expected a path for a folder")
    assert blocker.read_text() == "mine"
