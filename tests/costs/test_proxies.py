"""Cost-model proxies: big architectures built on the meta device cost the updates of a small trained model."""

from __future__ import annotations

from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.proxies import MetaCounter


def test_llama_7b_proxy_builds_on_meta_and_scales_with_blocks():
    counter = MetaCounter("llama-2-7b", "int4", num_labels=8, lora_r=8, lora_alpha=16)
    assert counter.n_blocks == 32 and counter.frozen_params > 6.5e9
    assert counter.frozen_bytes == int(counter.frozen_params * 18 / 32)
    cm = CostModel(counter, model_blocks=6)  # a 6-block trained model, costed as LLaMA-2-7B
    full, half = cm.step(1, 32, 6), cm.step(1, 32, 3)
    # Forward ≈ 2 FLOP per parameter per token; fwd + bwd (frozen weights) ≈ 4 per block parameter.
    assert 3.5 * 6.5e9 * 32 < full.flops < 4.5 * 6.8e9 * 32
    assert half.flops < 0.55 * full.flops and half.activation_bytes < 0.55 * full.activation_bytes
    assert cm.describe()["proxy"] == "llama-2-7b"


def test_a_proxy_sets_the_costs_and_the_summary_says_so(write_scenario, run):
    proxy = {"cost_model": {"arch": "roberta-base", "weight_dtype": "fp16"}, "stop": {"max_rounds": 1}}
    result, frames = run(write_scenario(proxy))
    own, own_frames = run(write_scenario({"stop": {"max_rounds": 1}}))
    costs, own_costs = result.summary["cost_model"], own.summary["cost_model"]
    assert costs["proxy"] == "roberta-base" and costs["weight_dtype"] == "fp16" and own_costs["proxy"] is None
    # Every update is costed as 2 steps of the proxy, not of MiniLM.
    assert (frames["updates"].flops == 2 * costs["flops_per_step_full_depth"]).all()
    assert (own_frames["updates"].flops == 2 * own_costs["flops_per_step_full_depth"]).all()
    # RoBERTa-base (12 blocks of width 768) costs ~8x MiniLM-L6 (6 of width 384) per token; fp16 weights.
    assert 5 < costs["flops_per_step_full_depth"] / own_costs["flops_per_step_full_depth"] < 12
    assert costs["frozen_bytes"] == 2 * costs["frozen_params"], "fp16 frozen weights"
    assert costs["frozen_params"] > 5 * own_costs["frozen_bytes"] / 4, "RoBERTa-base: 124M vs MiniLM's 22.7M fp32"
    assert frames["updates"].compute_s.iloc[0] > 5 * own_frames["updates"].compute_s.iloc[0]
