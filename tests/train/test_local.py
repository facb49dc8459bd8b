"""One real client update: blocks that never run stay untouched; torch's global RNG is left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import minilm_bundle_and_task

from fleetsim.core.updates import TrainConfig, UpdatePlan
from fleetsim.train.local import LocalTrainer


@pytest.fixture(scope="module")
def minilm():
    return minilm_bundle_and_task(seq_len=16, n_devices=4, eval_examples=16)


def test_training_leaves_never_active_blocks_untouched(minilm):
    bundle, task = minilm
    start = bundle.state()
    mask = np.tile(np.array([True, True, False, True, False, True]), (3, 1))
    plan = UpdatePlan(0, 0, TrainConfig(3, 4, 16, 0.01), 7, task.shards[0], mask)
    result = LocalTrainer(bundle, task.train).train(plan, start)
    for name, tensor in result.state.items():
        block = bundle.block_of[name]
        changed = not torch.equal(tensor, start[name])
        if block in (2, 4):
            assert not changed, name
        elif "lora_B" in name or block is None:
            assert changed, name  # lora_A gets no gradient at step 0 (B starts at zero), B always does


def test_an_update_is_reproducible_and_leaves_the_global_rng_alone(minilm):
    bundle, task = minilm
    start = bundle.state()
    plan = UpdatePlan(0, 1, TrainConfig(2, 4, 16, 0.01), 11, task.shards[1], np.ones((2, 6), dtype=bool))
    trainer = LocalTrainer(bundle, task.train)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = trainer.train(plan, start)
    assert torch.equal(torch.get_rng_state(), before), "training must not move torch's global RNG"
    torch.manual_seed(999)  # a different global state does not change the update
    second = trainer.train(plan, start)
    assert first.train_loss_mean == second.train_loss_mean
    assert all(torch.equal(first.state[n], second.state[n]) for n in first.state)
