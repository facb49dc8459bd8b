"""Variants over seeds, on hand-made runs: equal-time accuracy, time-averaged accuracy, censored times to
target, speedups paired by seed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleetsim.io.curves import accuracy_at, time_averaged_accuracy
from fleetsim.io.runs import Run
from fleetsim.io.variants import variant_markdown, variant_table


def _run(label: str, seed: int, evaluations: list[tuple[float, float]], ttt: float | None, peak: float = 1.0) -> Run:
    """A run evaluated at (end_s, accuracy) pairs, starting at accuracy 0.1."""
    rounds = pd.DataFrame({"end_s": [t for t, _ in evaluations], "accuracy": [a for _, a in evaluations]})
    updates = pd.DataFrame({"device_id": [0, 1], "peak_memory_bytes": [peak * 2**30, peak * 2**30]})
    summary = {
        "seed": seed,
        "strategy": label,
        "initial_accuracy": 0.1,
        "sim_time_s": evaluations[-1][0],
        "time_to_target_s": ttt,
        "device_energy_j": 3600.0 * seed,
        "bytes_down": 10**6,
        "bytes_up": 10**6,
    }
    return Run(Path(f"/{label}/{seed}"), rounds, updates, pd.DataFrame(), {**summary, "label": label}, {})


def test_accuracy_is_the_last_evaluation_at_or_before_a_time():
    run = _run("a", 1, [(10.0, 0.5), (30.0, 0.8)], None)
    assert accuracy_at(run, np.array([0.0, 9.9, 10.0, 29.0, 30.0])).tolist() == [0.1, 0.1, 0.5, 0.5, 0.8]
    assert math.isnan(accuracy_at(run, 31.0)[0]), "past the run's end"
    # ∫₀²⁰: 0.1 for 10 s, 0.5 for 10 s.
    assert time_averaged_accuracy(run, 20.0) == pytest.approx((0.1 * 10 + 0.5 * 10) / 20)


def test_variant_table_pairs_seeds_and_counts_runs_that_never_reached_the_target():
    runs = [
        _run("base", 1, [(10.0, 0.5), (40.0, 0.9)], ttt=40.0),
        _run("base", 2, [(20.0, 0.9)], ttt=20.0),
        _run("fast", 1, [(10.0, 0.9)], ttt=10.0, peak=0.5),
        _run("fast", 2, [(10.0, 0.6), (25.0, 0.7)], ttt=None, peak=0.5),  # never reached: counts with 25 s
    ]
    table = variant_table(runs, baseline="base").set_index("variant")
    fast = table.loc["fast"]
    assert fast.seeds == 2 and fast.reached == 1 and fast.pairs == 1
    assert fast.time_to_target_s == pytest.approx((10.0 + 25.0) / 2)
    assert fast.speedup == pytest.approx(40.0 / 10.0), "paired with seed 1's baseline only"
    # Equal time: at the same seed's baseline time to target (40 s → past fast's end for seed 1? no: 10 s end).
    assert math.isnan(accuracy_at(runs[2], 40.0)[0])
    assert fast.acc_at_common_end == pytest.approx((0.9 + 0.6) / 2), "both read at 10 s, the shortest run's end"
    assert fast.memory_saving == pytest.approx(0.5) and fast.memory_saving_low == fast.memory_saving_high == 0.5
    assert table.loc["base"].speedup == 1.0 and table.loc["base"].energy_wh == pytest.approx(1.5)
    markdown = variant_markdown(table.reset_index())
    assert "| fast | 2 | 1/2 | ≥ 17.5" in markdown and "(1 of 2 seeds)" in markdown
