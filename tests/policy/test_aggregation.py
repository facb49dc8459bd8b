"""FedAvg weights, per tensor and per block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_result

from fleetsim.policy.aggregation import block_fedavg, fedavg, weighted_average


def test_fedavg_weights_by_samples_on_a_hand_made_example():
    g = {"a": torch.zeros(2), "b": torch.ones(1)}
    r1 = make_result(0, 10, {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])})
    r2 = make_result(1, 30, {"a": torch.tensor([5.0, 6.0]), "b": torch.tensor([7.0])})
    out = fedavg(g, [r1, r2])
    assert torch.allclose(out["a"], torch.tensor([4.0, 5.0]))  # (10·1 + 30·5)/40, (10·2 + 30·6)/40
    assert torch.allclose(out["b"], torch.tensor([6.0]))


def test_tensor_with_zero_total_weight_keeps_its_global_value():
    g = {"a": torch.tensor([9.0]), "b": torch.tensor([1.0])}
    r1 = make_result(0, 10, {"a": torch.tensor([1.0]), "b": torch.tensor([3.0])})
    out = weighted_average(g, [r1], lambda r, name: 0.0 if name == "a" else 1.0)
    assert out["a"].item() == 9.0 and out["b"].item() == 3.0


def test_block_aggregation_weights_by_samples_times_active_steps():
    block_of = {"b0": 0, "b1": 1, "head": None}
    g = {"b0": torch.tensor([100.0]), "b1": torch.tensor([100.0]), "head": torch.tensor([100.0])}
    # client 0: 10 samples, block 0 active in 2 of 2 steps, block 1 never; client 1: 30 samples, block 0 in 1 step.
    r0 = make_result(0, 10, _state(1.0), np.array([[True, False], [True, False]]))
    r1 = make_result(1, 30, _state(5.0), np.array([[True, False], [False, False]]))
    out = block_fedavg(g, [r0, r1], block_of)
    assert out["b0"].item() == pytest.approx((10 * 2 * 1.0 + 30 * 1 * 5.0) / (10 * 2 + 30 * 1))
    assert out["b1"].item() == 100.0, "a block nobody trained keeps its global value"
    assert out["head"].item() == pytest.approx((10 * 2 * 1.0 + 30 * 2 * 5.0) / (10 * 2 + 30 * 2))


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"b0": torch.tensor([value]), "b1": torch.tensor([value]), "head": torch.tensor([value])}
