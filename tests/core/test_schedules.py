"""Layer-dropout schedules: every registered schedule has a row here, and each averages to its expectation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from fleetsim.core.schedules import SCHEDULES, DropoutConfig, expected_active, max_active, sample_mask


@dataclass(frozen=True)
class Row:
    """What a schedule promises."""

    exact_ratio: bool  # expected active blocks is exactly (1 − ratio) · L (round 0)
    bounded: bool  # no step runs more than max_active < L blocks (peak memory falls)


# One row per registered schedule: adding a schedule is one file in fleetsim/core/schedules/ and one row here.
ROWS = {
    "uniform": Row(exact_ratio=True, bounded=False),
    "depth": Row(exact_ratio=True, bounded=False),
    "exact_k": Row(exact_ratio=True, bounded=True),
    "keep_ends": Row(exact_ratio=True, bounded=True),
    "pld": Row(exact_ratio=False, bounded=False),
}


def test_every_registered_schedule_has_a_row():
    assert set(ROWS) == set(SCHEDULES)


@pytest.mark.parametrize("schedule", sorted(ROWS))
@pytest.mark.parametrize("n_blocks", [6, 30])
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_active_block_count_matches_the_schedule_expectation(schedule, n_blocks, ratio):
    cfg = DropoutConfig(ratio=ratio, schedule=schedule)
    steps = 4000
    mask = sample_mask(cfg, n_blocks, steps, round_idx=5, rng=np.random.default_rng(0))
    counts = mask.sum(axis=1)
    expected = expected_active(cfg, n_blocks, round_idx=5)
    # Bernoulli schedules: var ≤ L/4 per step; 5 standard errors.
    assert abs(counts.mean() - expected) < 5 * math.sqrt(n_blocks / 4 / steps), (counts.mean(), expected)
    assert counts.max() <= max_active(cfg, n_blocks)
    row = ROWS[schedule]
    if row.exact_ratio:
        assert abs(expected - (1 - ratio) * n_blocks) < 1e-6, "this schedule averages exactly to the ratio"
    assert (max_active(cfg, n_blocks) < n_blocks) == row.bounded


def test_exact_k_runs_floor_or_ceil_of_k_blocks():
    mask = sample_mask(DropoutConfig(ratio=0.3, schedule="exact_k"), 6, 500, 0, np.random.default_rng(1))
    assert set(mask.sum(axis=1).tolist()) == {4, 5}  # k = 0.7 · 6 = 4.2


def test_keep_ends_always_runs_the_first_and_last_block():
    mask = sample_mask(DropoutConfig(ratio=0.5, schedule="keep_ends"), 6, 500, 0, np.random.default_rng(2))
    assert mask[:, 0].all() and mask[:, -1].all()
    assert (mask.sum(axis=1) == 3).all()


def test_depth_drops_deeper_blocks_more():
    mask = sample_mask(DropoutConfig(ratio=0.5, schedule="depth"), 6, 4000, 0, np.random.default_rng(3))
    assert mask[:, 0].mean() > mask[:, -1].mean()


def test_pld_drops_more_as_rounds_go_on():
    cfg = DropoutConfig(ratio=0.4, schedule="pld", pld_gamma=0.2)
    early, late = expected_active(cfg, 12, 0), expected_active(cfg, 12, 50)
    assert early == 12 and late == pytest.approx(12 * (1 - 0.4), rel=1e-3)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (DropoutConfig(ratio=0.6, schedule="pld"), "at most 0.583 for pld on 6 blocks"),
        (DropoutConfig(ratio=0.5, schedule="depth", cap=0.4), "below the depth schedule's cap"),
    ],
)
def test_unreachable_ratios_are_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        SCHEDULES[cfg.schedule].check(cfg, 6)


def test_ratio_zero_runs_everything():
    assert sample_mask(DropoutConfig(), 6, 3, 0, np.random.default_rng(0)).all()


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match=f"unknown schedule 'sideways'; known: {SCHEDULES.known()}"):
        DropoutConfig(ratio=0.5, schedule="sideways")
