"""Rewards: progress per simulated second, per selected device, computed by hand on a made-up round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetsim.core.evaluation import EvalResult
from fleetsim.core.rounds import RoundFeedback
from fleetsim.core.updates import Outcome, TrainConfig, UpdatePlan, UpdateRecord, UpdateResult
from fleetsim.policy.rewards import REWARDS


def _record(device: int, outcome: Outcome, start_s: float, end_s: float) -> UpdateRecord:
    zeros = dict.fromkeys(
        ("download_s", "compute_s", "upload_s", "downlink_mbps", "uplink_mbps", "straggler_factor", "energy_j"), 0.0
    )
    return UpdateRecord(
        round_idx=0, device_id=device, profile="p", tier="t", outcome=outcome, failed_phase=None, start_s=start_s,
        end_s=end_s, flops=0, peak_memory_bytes=0, usable_memory_bytes=0, active_blocks_mean=1.0, bytes_down=0,
        bytes_up=0, **zeros,
    )  # fmt: skip


def _feedback(evaluation: EvalResult | None) -> RoundFeedback:
    plans = {d: UpdatePlan(0, d, TrainConfig(1, 1, 8, 0.1), 0, np.arange(4), np.ones((1, 2), bool)) for d in (1, 2)}
    records = [_record(1, Outcome.DELIVERED, 10.0, 30.0), _record(2, Outcome.DEADLINE, 10.0, 50.0)]
    result = UpdateResult(plans[1], {"a": torch.zeros(1)}, 1.0, 1.0, 1.0, probe_loss_before=2.0, probe_loss_after=1.5)
    return RoundFeedback(0, 10.0, 50.0, records, plans, [result], evaluation)


def test_probe_loss_drop_per_update_second_and_per_round_second():
    fb = _feedback(None)
    assert REWARDS["loss_drop_per_s"]()(fb, None) == {1: pytest.approx(0.5 / 20.0), 2: 0.0}
    assert REWARDS["loss_drop_per_round_s"]()(fb, None) == {1: pytest.approx(0.5 / 40.0), 2: 0.0}


def test_global_rewards_need_two_evaluations_and_credit_every_device():
    before, now = EvalResult(0.5, 1.2, 100), EvalResult(0.6, 1.0, 100)
    assert REWARDS["global_loss_drop_per_s"]()(_feedback(None), before) is None
    assert REWARDS["global_loss_drop_per_s"]()(_feedback(now), None) is None
    assert REWARDS["global_loss_drop_per_s"]()(_feedback(now), before) == {
        1: pytest.approx(0.2 / 40),
        2: pytest.approx(0.2 / 40),
    }
    assert REWARDS["accuracy_gain_per_s"]()(_feedback(now), before) == {
        1: pytest.approx(0.1 / 40),
        2: pytest.approx(0.1 / 40),
    }


def test_rewards_declare_whether_they_need_a_probe():
    assert {name for name, cls in REWARDS.items() if cls.needs_probe} == {"loss_drop_per_s", "loss_drop_per_round_s"}
