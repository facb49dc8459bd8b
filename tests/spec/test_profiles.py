"""Device profiles: distributions, their medians, the online share, a fleet group's compute scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetsim.app.loading import load_scenario
from fleetsim.spec.profiles import Availability, Constant, LogNormal


def test_lognormal_median_is_its_median():
    dist = LogNormal(dist="lognormal", median=20.0, sigma=0.7)
    draws = np.array([dist.at(z) for z in np.random.default_rng(0).standard_normal(4001)])
    assert dist.median_value() == 20.0
    assert np.median(draws) == pytest.approx(20.0, rel=0.05)


def test_constant_is_constant():
    dist = Constant(dist="constant", value=3.5)
    assert dist.at(-1.3) == dist.at(2.0) == dist.median_value() == 3.5


def test_online_share_is_on_over_on_plus_off():
    assert Availability(mean_online_s=30.0, mean_offline_s=90.0).online_share == 0.25


def test_a_groups_compute_scale_speeds_up_its_training_and_says_so(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "tiny.yaml"
    plain = load_scenario(scenario, [f"output_dir={tmp_path}"]).composition()
    faster = load_scenario(scenario, [f"output_dir={tmp_path}", "fleet[0].compute_scale=11.2"]).composition()
    base, scaled = plain[0][1], faster[0][1]
    assert scaled.train_flops_per_s == base.train_flops_per_s * 11.2
    assert scaled.kernel_overhead_s == base.kernel_overhead_s / 11.2
    assert scaled.sources["train_flops_per_s"].endswith("x 11.2 (the scenario's compute_scale)")
    assert "compute_scale" in scaled.training_stack
    assert faster[1][1] == plain[1][1]  # other groups unchanged
