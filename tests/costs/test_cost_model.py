"""Costs: counted FLOPs and activations, the affine block model, memory limits (oom), the disk cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import FIXTURE_PROFILES, StubCounter, minilm_bundle_and_task

from fleetsim.core.updates import TrainConfig, UpdatePlan
from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.counting import library_versions
from fleetsim.costs.model_counter import ModelCounter


@pytest.fixture(scope="module")
def cost_model():
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


def test_peak_memory_counts_the_optimizers_state():
    cm = CostModel(StubCounter(), 6)  # type: ignore[arg-type]
    trainable, frozen = 4 * 10**5, 50 * 10**6
    assert cm.peak_memory_bytes("adamw", 123) == frozen + trainable * (1 + 1 + 2) + 123  # weights, grads, 2 moments
    assert cm.peak_memory_bytes("sgd", 123) == frozen + trainable * (1 + 1) + 123


def test_mean_step_flops_interpolates_between_whole_block_counts():
    cm = CostModel(StubCounter(), 6)  # type: ignore[arg-type]
    assert cm.mean_step_flops(1, 1, 3.0) == cm.step(1, 1, 3).flops
    assert cm.mean_step_flops(1, 1, 3.25) == pytest.approx(
        0.75 * cm.step(1, 1, 3).flops + 0.25 * cm.step(1, 1, 4).flops
    )


def test_sent_bytes_of_a_shared_subset():
    cm = CostModel(StubCounter(), 6, {"a": 300, "b": 100})  # type: ignore[arg-type]
    assert cm.sent_bytes(None) == 4 * 10**5
    assert cm.sent_bytes(frozenset({"a"})) == 3 * 10**5


def test_counts_are_cached_on_disk_when_given_a_folder(tmp_path):
    counter = StubCounter()
    calls = []
    original = counter.count
    counter.count = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
    CostModel(counter, 6, cache_dir=tmp_path).step(4, 16, 3)  # type: ignore[arg-type]
    CostModel(counter, 6, cache_dir=tmp_path).step(4, 16, 3)  # type: ignore[arg-type]
    assert len(calls) == 3, "anchors 0, 1 and 6 counted once, then read from disk"
    assert len(list(tmp_path.glob("*.json"))) == 3


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


def test_a_shard_smaller_than_the_batch_is_costed_at_its_own_size(cost_model):
    cm, task = cost_model
    plan = UpdatePlan(0, 0, TrainConfig(2, 8, 32, 0.01), 0, task.shards[0][:3], np.ones((2, 6), dtype=bool))
    cost = cm.update(plan)
    assert cost.flops == 2 * cm.step(3, 32, 6).flops < 2 * cm.step(8, 32, 6).flops, "3 rows per step, not 8"
    assert cost.peak_memory_bytes == cm.peak_memory_bytes("adamw", cm.step(3, 32, 6).activation_bytes)


def test_the_count_cache_key_holds_lora_dropout_and_library_versions(cost_model, tmp_path):
    from fleetsim.spec.scenario import LoraSpec
    from fleetsim.train.models import load_model

    cm, task = cost_model
    with_dropout = load_model(str(cm.counter.bundle.model.name_or_path), 8, LoraSpec(r=4, alpha=8, dropout=0.1), 0)
    counter = ModelCounter(with_dropout, task.train, "minilm-test")
    assert counter.identity() != cm.counter.identity() and counter.identity()["lora_dropout"] == 0.1
    # LoRA dropout saves a mask for backward: a count cached without it would be wrong.
    assert counter.count(8, 32, 6).activation_bytes > cm.counter.count(8, 32, 6).activation_bytes
    CostModel(counter, 6, cache_dir=tmp_path).step(8, 32)
    keys = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(keys) == 3
    import hashlib

    from fleetsim.costs.cost_model import _COST_CODE_VERSION

    ident = {**counter.identity(), "libraries": library_versions(), "b": 8, "t": 32, "n": 6, "v": _COST_CODE_VERSION}
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]
    assert (tmp_path / f"{digest}.json").is_file(), "the key includes the library versions"
    assert set(library_versions()) == {"torch", "transformers", "peft"}
