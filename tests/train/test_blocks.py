"""Block switching: a skipped block does no work and gets no gradient; the full block list comes back."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import count_forwards, minilm_bundle_and_task

from fleetsim.train.blocks import BlockSwitch


@pytest.fixture(scope="module")
def minilm():
    return minilm_bundle_and_task(seq_len=16, n_devices=4, eval_examples=16)


def test_skipped_block_gets_no_forward_and_no_gradient(minilm):
    bundle, task = minilm
    switch = BlockSwitch(bundle.model, bundle.blocks)
    mask = np.array([True, False, True, False, False, True])
    calls, handles = count_forwards(bundle)
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
