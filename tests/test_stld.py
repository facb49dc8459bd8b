"""Layer dropout: skipped blocks do no work, schedules average to their ratio, per-block aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import minilm_bundle_and_task

from fleetsim.core.dropout import SCHEDULES, DropoutConfig, expected_active, sample_mask
from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateResult
from fleetsim.policy.aggregation import block_fedavg
from fleetsim.train.blocks import BlockSwitch
from fleetsim.train.evaluation import Evaluator
from fleetsim.train.local import LocalTrainer


@pytest.fixture(scope="module")
def minilm():
    bundle, task = minilm_bundle_and_task(seq_len=16, n_devices=4, eval_examples=16)
    return bundle, task


def _count_forwards(bundle):
    calls = [0] * bundle.num_blocks
    handles = [
        block.register_forward_hook(lambda m, i, o, k=k: calls.__setitem__(k, calls[k] + 1))
        for k, block in enumerate(bundle.blocks)
    ]
    return calls, handles


def test_skipped_block_gets_no_forward_and_no_gradient(minilm):
    bundle, task = minilm
    switch = BlockSwitch(bundle.model, bundle.blocks)
    mask = np.array([True, False, True, False, False, True])
    calls, handles = _count_forwards(bundle)
    bundle.model.train()
    with switch.active(mask):
        loss = bundle.model(
            input_ids=task.train.input_ids[:4],
            attention_mask=task.train.attention_mask[:4],
            labels=task.train.labels[:4],
        ).loss
    loss.backward()
    for h in handles:
        h.remove()
    assert calls == [1, 0, 1, 0, 0, 1]
    for name, param in bundle.trainable.items():
        block = bundle.block_of[name]
        if block is None or mask[block]:
            assert param.grad is not None, name  # lora_A's gradient is zero while lora_B is still zero
            assert "lora_A" in name or param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, f"{name} of skipped block {block} got a gradient"
    bundle.model.zero_grad(set_to_none=True)
    assert len(bundle.blocks) == 6 and switch.parent.layer is bundle.blocks, "the full block list is restored"


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


def test_full_depth_evaluation_runs_every_block(minilm):
    bundle, task = minilm
    calls, handles = _count_forwards(bundle)
    Evaluator(bundle, task.test, batch_size=8, seq_len=16).evaluate(bundle.state())
    for h in handles:
        h.remove()
    assert calls == [2] * 6  # 16 examples in batches of 8


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
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
    if schedule in ("uniform", "depth", "exact_k", "keep_ends"):
        assert abs(expected - (1 - ratio) * n_blocks) < 1e-6, "these schedules average exactly to the ratio"
    if schedule == "exact_k":
        k = (1 - ratio) * n_blocks
        assert set(counts.tolist()) <= {math.floor(k), math.ceil(k)}
    if schedule == "keep_ends":
        assert mask[:, 0].all() and mask[:, -1].all()
    if schedule == "depth":
        assert mask[:, 0].mean() > mask[:, -1].mean(), "deeper blocks are dropped more"


def test_pld_drops_more_as_rounds_go_on():
    cfg = DropoutConfig(ratio=0.4, schedule="pld", pld_gamma=0.2)
    early, late = expected_active(cfg, 12, 0), expected_active(cfg, 12, 50)
    assert early == 12 and late == pytest.approx(12 * (1 - 0.4), rel=1e-3)


def test_ratio_zero_runs_everything():
    assert sample_mask(DropoutConfig(), 6, 3, 0, np.random.default_rng(0)).all()


def _result(device: int, n: int, mask: np.ndarray, value: float) -> UpdateResult:
    plan = UpdatePlan(0, device, TrainConfig(mask.shape[0], 1, 8, 0.1), 0, np.arange(n), mask)
    return UpdateResult(
        plan, {"b0": torch.tensor([value]), "b1": torch.tensor([value]), "head": torch.tensor([value])}, 0, 0, 0
    )


def test_block_aggregation_weights_by_samples_times_active_steps():
    block_of = {"b0": 0, "b1": 1, "head": None}
    g = {"b0": torch.tensor([100.0]), "b1": torch.tensor([100.0]), "head": torch.tensor([100.0])}
    # client 0: 10 samples, block 0 active in 2 of 2 steps, block 1 never; client 1: 30 samples, block 0 in 1 step.
    r0 = _result(0, 10, np.array([[True, False], [True, False]]), 1.0)
    r1 = _result(1, 30, np.array([[True, False], [False, False]]), 5.0)
    out = block_fedavg(g, [r0, r1], block_of)
    assert out["b0"].item() == pytest.approx((10 * 2 * 1.0 + 30 * 1 * 5.0) / (10 * 2 + 30 * 1))
    assert out["b1"].item() == 100.0, "a block nobody trained keeps its global value"
    assert out["head"].item() == pytest.approx((10 * 2 * 1.0 + 30 * 2 * 5.0) / (10 * 2 + 30 * 2))
