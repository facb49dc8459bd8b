"""Small units: partition, FedAvg weights, overrides, random streams, availability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fleetsim.core.errors import InputError
from fleetsim.core.rng import Streams
from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateResult
from fleetsim.policy.aggregation import fedavg, weighted_average
from fleetsim.spec.profiles import FIGURE_FIELDS, Availability, Constant, DeviceProfile
from fleetsim.spec.scenario import apply_overrides
from fleetsim.train.data import dirichlet_partition, iid_partition
from fleetsim.world.fleet import Fleet


def _result(device: int, n: int, state: dict[str, torch.Tensor]) -> UpdateResult:
    plan = UpdatePlan(0, device, TrainConfig(1, 1, 8, 0.1), 0, np.arange(n), np.ones((1, 2), dtype=bool))
    return UpdateResult(plan, state, 0.0, 0.0, 0.0)


def test_fedavg_weights_by_samples_on_a_hand_made_example():
    g = {"a": torch.zeros(2), "b": torch.ones(1)}
    r1 = _result(0, 10, {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])})
    r2 = _result(1, 30, {"a": torch.tensor([5.0, 6.0]), "b": torch.tensor([7.0])})
    out = fedavg(g, [r1, r2])
    assert torch.allclose(out["a"], torch.tensor([4.0, 5.0]))  # (10·1 + 30·5)/40, (10·2 + 30·6)/40
    assert torch.allclose(out["b"], torch.tensor([6.0]))


def test_tensor_with_zero_total_weight_keeps_its_global_value():
    g = {"a": torch.tensor([9.0]), "b": torch.tensor([1.0])}
    r1 = _result(0, 10, {"a": torch.tensor([1.0]), "b": torch.tensor([3.0])})
    out = weighted_average(g, [r1], lambda r, name: 0.0 if name == "a" else 1.0)
    assert out["a"].item() == 9.0 and out["b"].item() == 3.0


def test_dirichlet_partition_covers_every_example_once_with_minimum_size():
    labels = np.repeat(np.arange(4), 50)
    shards = dirichlet_partition(labels, 10, 0.5, 5, np.random.default_rng(0))
    joined = np.concatenate(shards)
    assert sorted(joined.tolist()) == list(range(200))
    assert min(len(s) for s in shards) >= 5


def test_small_alpha_is_more_skewed_than_large_alpha():
    labels = np.repeat(np.arange(4), 500)

    def skew(alpha: float) -> float:
        shards = dirichlet_partition(labels, 20, alpha, 1, np.random.default_rng(1))
        return float(np.mean([np.bincount(labels[s], minlength=4).max() / len(s) for s in shards]))

    assert skew(0.1) > skew(100.0) + 0.2


def test_infeasible_partition_raises():
    with pytest.raises(ValueError, match="no Dirichlet"):
        dirichlet_partition(np.zeros(10, dtype=int), 5, 0.5, 5, np.random.default_rng(0), max_tries=5)


def test_iid_partition_is_balanced():
    shards = iid_partition(103, 10, np.random.default_rng(0))
    assert sorted(len(s) for s in shards) == [10] * 7 + [11] * 3


def test_overrides_set_nested_and_indexed_fields():
    raw = {"fleet": [{"profile": "a", "count": 1}], "training": {"local_steps": 2}}
    out = apply_overrides(raw, ["fleet[0].count=7", "training.local_steps=5", "stop.max_rounds=3", "fleet.0.profile=b"])
    assert out["fleet"][0] == {"profile": "b", "count": 7}
    assert out["training"]["local_steps"] == 5 and out["stop"]["max_rounds"] == 3
    assert raw["fleet"][0]["count"] == 1, "the input is not modified"
    with pytest.raises(InputError, match="key=value"):
        apply_overrides(raw, ["training.local_steps"])


def test_streams_depend_only_on_seed_name_and_ids():
    a, b = Streams(5), Streams(5)
    assert a.generator("x", 1, 2).random() == b.generator("x", 1, 2).random()
    assert a.generator("x", 1, 2).random() != a.generator("x", 2, 1).random()
    assert a.generator("x").random() != a.generator("y").random()
    assert a.integer_seed("t", 3) == b.integer_seed("t", 3) != Streams(6).integer_seed("t", 3)


def _profile(avail: Availability | None) -> DeviceProfile:
    return DeviceProfile(
        name="p",
        tier="t",
        usable_memory_gib=1,
        train_flops_per_s=1e9,
        downlink_mbps=Constant(dist="constant", value=1.0),
        uplink_mbps=Constant(dist="constant", value=1.0),
        availability=avail,
        failure_prob_per_update=0.0,
        straggler_sigma=0.0,
        train_power_w=1,
        radio_power_w=1,
        sources={k: "test" for k in FIGURE_FIELDS},
    )


def test_availability_matches_the_stationary_online_share():
    fleet = Fleet([("p", _profile(Availability(mean_online_s=30.0, mean_offline_s=70.0)), 400)], Streams(0))
    shares = [len(fleet.available(t)) / 400 for t in np.arange(0.0, 5000.0, 50.0)]
    assert abs(float(np.mean(shares)) - 0.3) < 0.03


def test_availability_is_lazy_and_reproducible():
    changes: list[tuple[float, int, bool]] = []
    prof = _profile(Availability(mean_online_s=10.0, mean_offline_s=10.0))
    fleet = Fleet([("p", prof, 3)], Streams(4), on_change=lambda t, d, o: changes.append((t, d, o)))
    assert changes == [], "nothing is drawn before it is asked for"
    first = [fleet.is_online(d, 100.0) for d in fleet.devices]
    again = Fleet([("p", prof, 3)], Streams(4))
    assert [again.is_online(d, 100.0) for d in again.devices] == first
    assert all(t <= 100.0 for t, _, _ in changes)


def test_always_online_device_never_goes_offline():
    fleet = Fleet([("p", _profile(None), 2)], Streams(0))
    assert all(fleet.is_online(d, 1e9) for d in fleet.devices)
    assert math.isinf(fleet.online_until_s(fleet.devices[0], 5.0))
