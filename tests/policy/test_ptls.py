"""Personalized layer sharing: the on-disk store, what a device starts from, what travels, which blocks."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_result

from fleetsim.core.rng import Streams
from fleetsim.core.updates import TrainConfig
from fleetsim.policy.ptls import PersonalStore, block_disagreement
from fleetsim.policy.strategies import StrategyContext
from fleetsim.policy.strategies.droppeft import DropPEFT, DropPEFTOptions

BLOCK_OF: dict[str, int | None] = {"b0": 0, "b1": 1, "head": None}


def test_ptls_store_keeps_each_devices_personal_tensors():
    store = PersonalStore()
    try:
        store.put(3, {"a": torch.tensor([1.0, 2.0])})
        store.put(7, {"a": torch.tensor([5.0, 6.0])})
        assert torch.equal(store.get(3)["a"], torch.tensor([1.0, 2.0]))
        assert torch.equal(store.get(7)["a"], torch.tensor([5.0, 6.0]))
        assert store.get(4) is None and store.devices() == [3, 7]
        other = PersonalStore()
        other.load_state_dict(store.state_dict())
        assert other.devices() == [3, 7] and torch.equal(other.get(7)["a"], torch.tensor([5.0, 6.0]))
        other.close()
    finally:
        store.close()
    assert not store.directory.exists()


def _droppeft(ptls: dict) -> DropPEFT:
    ctx = StrategyContext(TrainConfig(1, 1, 8, 0.1), None, Streams(0), BLOCK_OF, 2)  # type: ignore[arg-type]
    return DropPEFT(ctx, DropPEFTOptions(configurator=False, ptls=ptls))


def _state(value: float) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([value]) for k in BLOCK_OF}


def test_droppeft_start_state_uses_the_devices_own_personal_tensors():
    strategy = _droppeft({"mode": "fixed", "shared_blocks": 1, "head_personal": True})
    try:
        assert strategy.shared_names(0) == frozenset({"b0"})
        g = _state(0.0)
        merged = strategy.aggregate(0, g, [make_result(1, 10, _state(1.0)), make_result(2, 10, _state(3.0))])
        assert merged.round_columns == {"personal_tensors": 2}
        new = merged.global_state
        assert new["b0"].item() == 2.0, "shared block averaged"
        assert new["b1"].item() == 0.0 and new["head"].item() == 0.0, "personal tensors not aggregated"
        own = strategy.start_state(2, new)
        assert own["b1"].item() == 3.0 and own["head"].item() == 3.0 and own["b0"].item() == 2.0
        newcomer = strategy.start_state(9, new)
        assert newcomer["b1"].item() == 0.0 and newcomer["head"].item() == 0.0, "a newcomer's personal: initial"
        assert strategy.eval_state(new)["head"].item() == 2.0, "reported global model: mean of personal tensors"
    finally:
        strategy.close()


def test_disagreement_mode_chooses_the_split_once_and_it_round_trips_through_state_dict():
    strategy = _droppeft({"mode": "disagreement", "personal_blocks": 1, "choose_after_rounds": 2})
    g = {"b0": torch.zeros(2), "b1": torch.zeros(2), "head": torch.zeros(1)}

    def result(device: int, b0: list[float], b1: list[float]):
        return make_result(device, 4, {"b0": torch.tensor(b0), "b1": torch.tensor(b1), "head": torch.ones(1)})

    pulled_apart = [result(0, [1, 0], [1, 0]), result(1, [2, 0], [0, 1])]
    try:
        assert strategy.shared_names(0) is None, "everything shared until the split is chosen"
        strategy.aggregate(0, g, pulled_apart)
        assert strategy.shared_names(1) is None
        strategy.aggregate(1, g, pulled_apart)
        assert strategy.shared_names(2) == frozenset({"b0", "head"}), "block 1 disagrees most: personal"
        twin = _droppeft({"mode": "disagreement", "personal_blocks": 1, "choose_after_rounds": 2})
        twin.load_state_dict(strategy.state_dict())
        assert twin.shared_names(2) == frozenset({"b0", "head"})
        assert torch.equal(twin.start_state(1, g)["b1"], torch.tensor([0.0, 1.0]))
        twin.close()
    finally:
        strategy.close()


def test_block_disagreement_ranks_the_block_clients_pull_apart():
    g = {"b0": torch.zeros(2), "b1": torch.zeros(2), "head": torch.zeros(1)}

    def result(b0: list[float], b1: list[float]):
        return make_result(0, 4, {"b0": torch.tensor(b0), "b1": torch.tensor(b1), "head": torch.zeros(1)})

    # Block 0: both clients move the same way (similarity 1). Block 1: opposite-ish directions.
    out = block_disagreement(g, [result([1, 0], [1, 0]), result([2, 0], [0, 1])], BLOCK_OF, 2)
    # mean of block 1 = (0.5, 0.5): each update has cosine 1/sqrt(2) to it.
    assert out[0] == pytest.approx(0.0, abs=1e-6)
    assert out[1] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_ptls_uploads_only_shared_tensors(write_scenario, run):
    options = {"arms": [0.0, 0.3, 0.5], "policy": "ucb1"}
    options["ptls"] = {"mode": "fixed", "shared_blocks": 3, "head_personal": True}
    _, frames = run(write_scenario({"strategy": {"name": "droppeft", "options": options}, "stop": {"max_rounds": 2}}))
    # LoRA r=4 on q and v of 6 blocks; blocks 0-2 shared; head (8x384+8) personal.
    shared_bytes = 3 * 2 * (4 * 384 + 384 * 4) * 4
    delivered = frames["updates"][frames["updates"].outcome == "delivered"]
    assert (delivered.bytes_up == shared_bytes).all() and (delivered.bytes_down == shared_bytes).all()
    assert frames["rounds"].personal_tensors.iloc[-1] == 3 * 2 * 2 + 2
