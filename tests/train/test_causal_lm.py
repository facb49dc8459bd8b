"""Next-token fine-tuning of a decoder (SmolLM2-135M): perplexity falls, and layer dropout and the
configurator run as they do for classification."""

from __future__ import annotations

import math

import pytest
import torch

import fleetsim
from fleetsim.core.errors import InputError
from fleetsim.spec.shipped import BUILTIN_SCENARIOS_DIR
from fleetsim.train.data import Split
from fleetsim.train.objectives import CAUSAL_LM, CLASSIFICATION, IGNORE_INDEX

SMALL = {
    "fleet": [{"profile": "phone_high", "count": 2}, {"profile": "jetson_xavier_nx", "count": 2}],
    "training.local_steps": 3,
    "training.batch_size": 4,
    "training.seq_len": 32,
    "rounds.clients_per_round": 2,
    "stop.max_rounds": 2,
    "evaluation.max_examples": 16,
    "strategy.options": {"arms": [0.1, 0.25], "probe_examples": 8},
}


def test_targets_are_the_tokens_with_padding_ignored():
    split = Split(torch.tensor([[5, 6, 0, 0]]), torch.tensor([[1, 1, 0, 0]]), torch.tensor([3]))
    rows = torch.tensor([0])
    assert CAUSAL_LM.targets(split, rows, 3).tolist() == [[5, 6, IGNORE_INDEX]]
    assert CLASSIFICATION.targets(split, rows, 3).tolist() == [3]


def test_scores_count_predicted_tokens_only():
    # Position t predicts token t + 1: two tokens predicted, the padded third ignored.
    logits = torch.full((1, 3, 4), -10.0)
    logits[0, 0, 2] = 10.0  # predicts 2, target 2: right
    logits[0, 1, 1] = 10.0  # predicts 1, target 3: wrong
    score = CAUSAL_LM.score(logits, torch.tensor([[0, 2, 3]]))
    assert (score.correct, score.count) == (1, 2)
    masked = CAUSAL_LM.score(logits, torch.tensor([[0, 2, IGNORE_INDEX]]))
    assert (masked.correct, masked.count) == (1, 1)
    assert CAUSAL_LM.perplexity(math.log(20.0)) == pytest.approx(20.0)
    assert CLASSIFICATION.perplexity(1.0) is None


def test_smollm2_perplexity_falls_with_layer_dropout_and_the_configurator(tmp_path):
    run = fleetsim.run(BUILTIN_SCENARIOS_DIR / "smollm2_lm.yaml", SMALL, run_dir=tmp_path / "lm")
    s = run.summary
    assert s["task"] == "causal_lm" and s["majority_class_accuracy"] is None
    evaluated = run.rounds.perplexity.dropna()
    assert len(evaluated) == 2
    assert s["final_perplexity"] < 0.8 * s["initial_perplexity"], (s["initial_perplexity"], list(evaluated))
    assert s["final_perplexity"] == pytest.approx(math.exp(run.rounds.eval_loss.iloc[-1]))
    delivered = run.updates[run.updates.outcome == "delivered"]
    assert len(delivered) == 4 and delivered.arm.notna().all()  # the configurator chose every update's ratio
    assert "configurator" in s
    # A language model trains LoRA only (no head): r=8 on q_proj (576→576) and v_proj (576→192), 30 blocks.
    assert s["cost_model"]["trainable_bytes"] == 30 * (8 * 576 + 576 * 8 + 8 * 576 + 192 * 8) * 4


def test_a_perplexity_target_needs_a_language_model(tmp_path):
    with pytest.raises(InputError, match="target_perplexity"):
        fleetsim.run(
            BUILTIN_SCENARIOS_DIR / "smollm2_lm.yaml",
            {"task": "classification", "stop.target_perplexity": 50},
            run_dir=tmp_path / "x",
        )
