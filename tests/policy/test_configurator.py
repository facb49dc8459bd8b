"""DropPEFT's configurator: memory feasibility, the policy's ratio as a floor, straggler balance, the one
time model, typed options; end to end on the tiny fleet where it matters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURE_PROFILES, stub_cost_model
from pydantic import ValidationError

from fleetsim.core.schedules import DropoutConfig
from fleetsim.core.updates import TrainConfig
from fleetsim.costs.timing import phase_times
from fleetsim.policy.bandits import SlidingWindowParams
from fleetsim.policy.configurators.base import with_dropout
from fleetsim.policy.configurators.droppeft import BanditOptions, DropPEFTConfigurator
from fleetsim.spec.profiles import load_profile
from fleetsim.world.conditions import median_conditions
from fleetsim.world.fleet import Device

BASE = TrainConfig(local_steps=4, batch_size=8, seq_len=32, lr=0.01)


def _device(i: int, profile: str) -> Device:
    return Device(i, profile, load_profile(FIXTURE_PROFILES / f"{profile}.yaml"))


def test_expected_time_is_the_simulations_time_model_at_median_conditions():
    cm = stub_cost_model()
    conf = DropPEFTConfigurator(BASE, cm, BanditOptions(arms=[0.0, 0.5]), np.random.default_rng(0))
    slow = _device(0, "det_slow")
    sent = cm.sent_bytes(None)
    for arm, blocks in ((0, 6), (1, 3)):  # keep_ends 0.5 of 6 blocks: exactly 3 run
        flops = 4 * cm.step(8, 32, blocks).flops
        times = phase_times(
            slow.profile, median_conditions(slow.profile), flops=flops, download_bytes=sent, upload_bytes=sent
        )
        assert conf.expected_time_s(slow, arm, None) == times.total_s
    # det_slow: 1e10 FLOP/s, 2 / 1 Mbit/s, 0.5 s latency; the stub's step with 3 blocks is 4 GFLOP.
    assert conf.expected_time_s(slow, 1, None) == pytest.approx(16e9 / 1e10 + sent * 8 / 2e6 + sent * 8 / 1e6 + 1.0)


def test_slow_devices_get_more_dropout_and_nobody_goes_below_the_policys_ratio():
    conf = DropPEFTConfigurator(
        BASE, stub_cost_model(), BanditOptions(arms=[0.0, 0.33, 0.67]), np.random.default_rng(0)
    )
    devices = [_device(0, "det_fast"), _device(1, "det_fast"), _device(2, "det_slow"), _device(3, "det_slow")]
    assignment = conf.assign(0, devices, None)
    ratios = {d: c.dropout.ratio for d, c in assignment.configs.items()}
    floor = assignment.round_columns["global_arm_ratio"]
    assert floor == 0.0, "untried arms first, lowest index first"
    assert all(r >= floor for r in ratios.values())
    assert ratios[2] > ratios[0] and ratios[3] > ratios[1]
    assert all(c.arm is not None and c.dropout.ratio == conf.arms[c.arm].ratio for c in assignment.configs.values())
    assert all(c.probe_examples == 16 for c in assignment.configs.values()), "loss_drop_per_s needs a probe"
    assert not math.isnan(assignment.round_columns["target_time_s"])


def test_infeasible_arms_are_never_assigned_and_devices_nothing_fits_cannot_train():
    cm = stub_cost_model()
    conf = DropPEFTConfigurator(BASE, cm, BanditOptions(arms=[0.0, 0.5]), np.random.default_rng(0))
    small = _device(0, "det_fast")
    between = (conf.peak_memory_bytes(0) + conf.peak_memory_bytes(1)) / 2
    small.profile = small.profile.model_copy(update={"usable_memory_gib": between / 1024**3})
    assert conf.feasible(small).tolist() == [False, True] and conf.can_train(small)
    assert conf.assign(0, [small, _device(1, "det_fast")], None).configs[0].dropout.ratio == 0.5
    tiny = _device(2, "det_tiny_memory")
    assert not conf.can_train(tiny)


def test_policy_params_are_typed_and_checked_against_the_chosen_policy():
    options = BanditOptions(policy="sw_ucb", policy_params={"window": 7})
    assert options.policy_params == SlidingWindowParams(window=7)
    with pytest.raises(ValidationError, match=r"parameters of sw_ucb \(c, window\)"):
        BanditOptions(policy="sw_ucb", policy_params={"windw": 7})
    with pytest.raises(ValidationError, match="one of accuracy_gain_per_s"):
        BanditOptions(reward="loss_drop")


def test_lr_scale_applies_only_while_blocks_are_dropped():
    base = TrainConfig(4, 8, 32, 0.01)
    assert with_dropout(base, DropoutConfig(0.5, "keep_ends"), 2.0).lr == pytest.approx(0.02)
    assert with_dropout(base, DropoutConfig(0.0, "keep_ends"), 2.0).lr == pytest.approx(0.01)


def _droppeft_tiny(write_scenario, extra: dict | None = None):
    return write_scenario(
        {
            "strategy": {"name": "droppeft", "options": {"arms": [0.0, 0.3, 0.5], "policy": "ucb1", **(extra or {})}},
            "stop": {"max_rounds": 3},
        }
    )


def test_same_seed_same_choices(write_scenario, run):
    path = _droppeft_tiny(write_scenario)
    _, a = run(path)
    _, b = run(path)
    pd.testing.assert_frame_equal(a["updates"], b["updates"])
    pd.testing.assert_frame_equal(a["bandit"], b["bandit"])
    assert a["updates"].arm.notna().all()


def test_policy_ratio_is_a_floor_and_slow_devices_drop_more(write_scenario, run):
    # det_slow computes 10x slower than det_fast: straggler balance gives it a ratio at least as high as the fast
    # devices' in every round, and with the floor no device drops less than the policy's arm.
    _, frames = run(_droppeft_tiny(write_scenario, {"ptls": None}))
    updates = frames["updates"].merge(frames["rounds"][["round", "global_arm_ratio"]], on="round")
    assert (updates.configured_dropout_ratio >= updates.global_arm_ratio - 1e-12).all()
    by_round = updates.pivot_table(index="round", columns="profile", values="configured_dropout_ratio", aggfunc="min")
    assert (by_round.det_slow >= by_round.det_fast).all()
    assert (by_round.det_slow > by_round.det_fast).any()
