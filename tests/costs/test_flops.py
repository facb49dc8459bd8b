"""Counted FLOPs agree with the analytic formula, for the trained model and for a LLaMA proxy (SDPA on CPU)."""

from __future__ import annotations

from conftest import minilm_bundle_and_task

from fleetsim.costs.flops import analytic_step_flops
from fleetsim.costs.model_counter import ModelCounter
from fleetsim.costs.proxies import ARCHITECTURES, MetaCounter


def test_counted_flops_match_the_analytic_estimate():
    bundle, task = minilm_bundle_and_task(seq_len=32, n_devices=2, eval_examples=8)
    counter = ModelCounter(bundle, task.train, "minilm-test")
    config = bundle.model.base_model.model.config
    for n in (1, 3, 6):
        counted = counter.count(8, 32, n).flops
        analytic = analytic_step_flops(config, 8, 32, n, lora_r=4, num_labels=8)
        assert abs(counted / analytic - 1) < 0.01, (n, counted, analytic)


def test_cpu_attention_kernel_is_counted():
    # LLaMA-family models use SDPA's CPU flash kernel, which torch's counter does not know by itself.
    from transformers import AutoConfig

    counter = MetaCounter("smollm2-135m", "fp32", num_labels=8, lora_r=8, lora_alpha=16)
    spec = dict(ARCHITECTURES["smollm2-135m"])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    counted = counter.count(2, 256, 30).flops
    assert abs(counted / analytic_step_flops(config, 2, 256, 30, 8, 8) - 1) < 0.01
