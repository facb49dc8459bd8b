"""``fleetsim calibrate``: a profile that loads and cites its measurement; bad arguments are one line, exit 2,
and no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetsim.app.calibrate import variants
from fleetsim.app.cli import main
from fleetsim.costs.step_timer import StepConfig
from fleetsim.spec.profiles import load_profile


def test_calibrate_writes_a_profile_that_loads_and_cites_the_measurement(tmp_path: Path, capfd):
    out = tmp_path / "here.yaml"
    argv = ["calibrate", "--model", "minilm-l6", "--batch", "2", "--seq", "8", "--repeats", "1", "--steps", "1"]
    assert main([*argv, "--warmup", "0", "--patience", "0", "--out", str(out)]) == 0
    profile = load_profile(out)
    assert profile.memory_bytes_per_s is None or profile.memory_bytes_per_s > 0
    assert profile.train_flops_per_s > 0 and profile.kernel_overhead_s >= 0
    for figure in ("train_flops_per_s", "kernel_overhead_s"):
        assert profile.sources[figure].startswith("M: fleetsim calibrate --model minilm-l6 --batch 2 --seq 8")
    assert "torch 2." in profile.training_stack and "2 threads" in profile.training_stack
    printed = capfd.readouterr()  # at the file descriptors: libtorch's profiler writes to fd 2 directly
    assert "| 2×8, 6 blocks |" in printed.out and "fitted: train_flops_per_s" in printed.out
    assert "USDT" not in printed.err and "profiler_start" not in printed.err


BAD = {
    "unknown model": (["--model", "gpt-17", "--batch", "4", "--seq", "8"], "--model: expected a model id"),
    "batch 0": (["--model", "minilm-l6", "--batch", "0", "--seq", "8"], "--batch: expected a whole number >= 1, got 0"),
    "negative seq": (["--model", "minilm-l6", "--batch", "2", "--seq", "-3"], "--seq: expected a whole number >= 1"),
    "ratio 1": (["--model", "minilm-l6", "--batch", "2", "--seq", "8", "--ratio", "1"], "--ratio: expected a layer"),
    "unknown dataset": (
        ["--model", "minilm-l6", "--batch", "2", "--seq", "8", "--dataset", "mnist"],
        "--dataset: expected a dataset id",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(case: str, tmp_path: Path, capsys):
    args, message = BAD[case]
    out = tmp_path / "p.yaml"
    assert main(["calibrate", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_an_existing_profile_is_not_overwritten_without_force(tmp_path: Path, capsys):
    out = tmp_path / "p.yaml"
    out.write_text("kept")
    assert main(["calibrate", "--model", "minilm-l6", "--batch", "2", "--seq", "8", "--out", str(out)]) == 2
    assert "--out: expected a file that does not exist yet (or --force)" in capsys.readouterr().err
    assert out.read_text() == "kept"


def test_variants_move_the_work_mix_apart():
    assert variants(16, 64, 0.0, 6, 512) == [
        StepConfig(16, 64, 6),  # as asked
        StepConfig(8, 64, 6),  # half the batch: same calls, half the work
        StepConfig(8, 128, 6),  # same tokens, twice the sequence: more attention traffic per FLOP
        StepConfig(16, 64, 3),  # the other dropout ratio: fewer blocks
    ]
    # One row cannot be halved; the sequence is at the model's limit, so it is halved instead; 0.5 → ratio 0.
    assert variants(1, 64, 0.5, 30, 64) == [StepConfig(1, 64, 15), StepConfig(1, 32, 15), StepConfig(1, 64, 30)]
