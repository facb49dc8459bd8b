"""Damaged run and study folders (a hand-edited or truncated summary.json, study.json or table) are named in
one line with exit code 2, and nothing is written beside them."""

from __future__ import annotations

import pandas as pd
import pytest

from fleetsim.app.cli import main


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "expected a readable JSON file written by fleetsim, got 'JSONDecodeError: "),
        ("[1, 2]", "expected a JSON object written by fleetsim, got 'list'"),
    ],
)
@pytest.mark.parametrize("command", ["report", "resume"])
def test_a_damaged_summary_is_named(tmp_path, capsys, text, expected, command):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(text)
    argv = (
        ["report", str(run), "--out", str(tmp_path / "out")] if command == "report" else ["run", "--resume", str(run)]
    )
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {run / 'summary.json'}: {expected}"), err
    assert "\n" not in err
    assert not (tmp_path / "out").exists()


def test_a_damaged_table_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"status": "complete"}')
    for name in ("updates", "events"):
        pd.DataFrame({"round": [0]}).to_parquet(run / f"{name}.parquet")
    (run / "rounds.parquet").write_text("garbage")
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {run / 'rounds.parquet'}: expected a Parquet table written by fleetsim")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{bad", "expected a readable JSON file"),
        ("{}", "spec: expected a JSON object written by fleetsim, with this key"),
    ],
)
def test_a_damaged_study_record_is_named(tmp_path, capsys, text, expected):
    (tmp_path / "study.json").write_text(text)
    assert main(["study", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fleetsim: error: {tmp_path / 'study.json'}: {expected}"), err


def test_validate_finds_a_shipped_scenario_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "tiny"]) == 0
    assert "tiny.yaml: ok" in capsys.readouterr().out
