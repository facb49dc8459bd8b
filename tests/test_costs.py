"""Costs: counted FLOPs and activations, the affine block model, memory limits (oom), meta proxies."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import FIXTURE_PROFILES, minilm_bundle_and_task

from fleetsim.core.updates import TrainConfig, UpdatePlan
from fleetsim.costs.cost_model import CostModel, ModelCounter
from fleetsim.costs.proxies import MetaCounter


@pytest.fixture(scope="module")
def cost_model(tmp_path_factory):
    bundle, task = minilm_bundle_and_task(seq_len=32, n_devices=2, eval_examples=8)
    return CostModel(ModelCounter(bundle, task.train, "minilm-test"), bundle.num_blocks), task


def test_affine_block_model_equals_a_direct_count(cost_model):
    cm, _ = cost_model
    for n in (1, 3, 5):
        direct = cm.counter.count(8, 32, n)
        assert cm.step(8, 32, n) == direct, n


def test_update_cost_follows_the_blocks_actually_run(cost_model):
    cm, task = cost_model
    mask = np.array([[True] * 6, [True, False, True, False, True, False], [False] * 6])
    plan = UpdatePlan(0, 0, TrainConfig(3, 8, 32, 0.01), 0, task.shards[0], mask)
    cost = cm.update(plan)
    assert cost.flops == cm.step(8, 32, 6).flops + cm.step(8, 32, 3).flops + cm.step(8, 32, 0).flops
    full = cm.peak_memory_bytes("adamw", cm.step(8, 32, 6).activation_bytes)
    assert cost.peak_memory_bytes == full, "peak memory is that of the step with the most blocks"
    half = UpdatePlan(0, 0, TrainConfig(2, 8, 32, 0.01), 0, task.shards[0], mask[1:2].repeat(2, axis=0))
    assert cm.update(half).peak_memory_bytes < full


def test_oom_exactly_when_peak_memory_exceeds_usable_memory(write_scenario, run, tmp_path, cost_model):
    # A device whose memory lies between the peak at exact_k ratio 0.5 and at full depth.
    cm, _ = cost_model
    full_peak = cm.peak_memory_bytes("adamw", cm.step(4, 16, 6).activation_bytes)
    half_peak = cm.peak_memory_bytes("adamw", cm.step(4, 16, 3).activation_bytes)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    prof = yaml.safe_load((FIXTURE_PROFILES / "det_fast.yaml").read_text())
    prof["usable_memory_gib"] = (full_peak + half_peak) / 2 / 1024**3
    (profiles / "mid_memory.yaml").write_text(yaml.safe_dump(prof))
    base = {
        "profiles_dir": str(profiles),
        "fleet": [{"profile": "mid_memory", "count": 2}],
        "rounds": {"clients_per_round": 2},
        "stop": {"max_rounds": 1},
    }
    _, full = run(write_scenario(base))
    assert (full["updates"].outcome == "oom").all()
    drop = {"strategy": {"name": "layerdrop", "options": {"ratio": 0.5, "schedule": "exact_k"}}}
    _, half = run(write_scenario({**base, **drop}))
    assert (half["updates"].outcome == "delivered").all()
    for frame in (full["updates"], half["updates"]):
        assert ((frame.outcome == "oom") == (frame.peak_memory_bytes > frame.usable_memory_bytes)).all()


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


def test_summary_says_when_a_proxy_is_in_use(write_scenario, run):
    result, frames = run(
        write_scenario({"cost_model": {"arch": "roberta-base", "weight_dtype": "fp16"}, "stop": {"max_rounds": 1}})
    )
    assert result.summary["cost_model"]["proxy"] == "roberta-base"
    assert result.summary["cost_model"]["weight_dtype"] == "fp16"
    # RoBERTa-base is ~5x the compute of MiniLM per token.
    assert frames["updates"].flops.iloc[0] > 3 * 2 * result.summary["cost_model"]["flops_per_step_full_depth"] / 4


def test_counted_flops_match_the_analytic_estimate(cost_model):
    from fleetsim.costs.flops import analytic_step_flops

    cm, _ = cost_model
    config = cm.counter.bundle.model.base_model.model.config
    for n in (1, 3, 6):
        counted = cm.counter.count(8, 32, n).flops
        analytic = analytic_step_flops(config, 8, 32, n, lora_r=4, num_labels=8)
        assert abs(counted / analytic - 1) < 0.01, (n, counted, analytic)


def test_cpu_attention_kernel_is_counted():
    # LLaMA-family models use SDPA's CPU flash kernel, which torch's counter does not know by itself.
    from transformers import AutoConfig

    from fleetsim.costs.flops import analytic_step_flops
    from fleetsim.costs.proxies import ARCHITECTURES

    counter = MetaCounter("smollm2-135m", "fp32", num_labels=8, lora_r=8, lora_alpha=16)
    spec = dict(ARCHITECTURES["smollm2-135m"])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    counted = counter.count(2, 256, 30).flops
    assert abs(counted / analytic_step_flops(config, 2, 256, 30, 8, 8) - 1) < 0.01
