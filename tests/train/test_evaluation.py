"""Evaluation runs the model at full depth."""

from __future__ import annotations

import pytest
from conftest import count_forwards, minilm_bundle_and_task

from fleetsim.train.evaluation import Evaluator


@pytest.fixture(scope="module")
def minilm():
    return minilm_bundle_and_task(seq_len=16, n_devices=4, eval_examples=16)


def test_full_depth_evaluation_runs_every_block(minilm):
    bundle, task = minilm
    calls, handles = count_forwards(bundle)
    Evaluator(bundle, task, batch_size=8, seq_len=16).evaluate(bundle.state())
    for h in handles:
        h.remove()
    assert calls == [2] * 6  # 16 examples in batches of 8
