"""Fleets drawn from the AI-Benchmark phone population: deterministic, sized, scaled by score."""

from __future__ import annotations

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.spec.profiles import BUILTIN_PROFILES_DIR, load_profile
from fleetsim.world.population import APP_MEMORY_SHARE, draw_population, read_population


def test_population_groups_sum_to_the_count_and_scale_compute_by_score():
    reference = load_profile(BUILTIN_PROFILES_DIR / "phone_mid.yaml")
    phones = read_population("ai_benchmark_2019")
    median = float(np.median([p.cpu_float_score for p in phones]))
    groups = draw_population("ai_benchmark_2019", "phone_mid", reference, 5000, Streams(3).generator("population", 0))
    assert sum(n for _, _, n in groups) == 5000 and len(phones) == 333
    assert len(groups) > 300, "5000 draws with replacement reach almost every one of the 333 phones"
    for profile_id, profile, _ in groups:
        phone = phones[int(profile_id.split("[")[1].split("]")[0])]
        assert profile_id.endswith(f"]:{phone.model}")
        assert profile.train_flops_per_s == reference.train_flops_per_s * (phone.cpu_float_score / median)
        assert profile.usable_memory_gib == phone.ram_gib * APP_MEMORY_SHARE
        assert profile.downlink_mbps == reference.downlink_mbps and profile.tier == reference.tier
    again = draw_population("ai_benchmark_2019", "phone_mid", reference, 5000, Streams(3).generator("population", 0))
    assert [(i, n) for i, _, n in again] == [(i, n) for i, _, n in groups]
