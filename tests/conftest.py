"""Shared fixtures and helpers: tiny scenarios written to a temporary folder, runs of them and their tables,
the real MiniLM model for unit tests, hand-made update results."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from fleetsim.app.loading import load_scenario
from fleetsim.app.runner import RunResult, run_scenario

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_PROFILES = Path(__file__).resolve().parent / "fixtures" / "profiles"

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _two_threads_after_each_test():
    """A test that runs inline at ``executor.threads_per_worker=1`` leaves this process at one thread; the next
    test starts at two again (host-computed numbers can differ in their last digits between thread counts)."""
    yield
    torch.set_num_threads(2)


# A deterministic fleet: constant links, no stragglers, failures or churn.
DETERMINISTIC: dict[str, Any] = {
    "name": "det",
    "seed": 3,
    "profiles_dir": str(FIXTURE_PROFILES),
    "fleet": [{"profile": "det_fast", "count": 2}, {"profile": "det_slow", "count": 2}],
    "model": {"id": "minilm-l6", "lora": {"r": 4, "alpha": 8}},
    "dataset": {"id": "reuters-r8", "partition": {"kind": "dirichlet", "alpha": 1.0}},
    "training": {
        "local_steps": 2,
        "batch_size": 4,
        "seq_len": 16,
        "optimizer": {"name": "adamw", "lr": 0.002},
    },
    "rounds": {"clients_per_round": 4, "deadline_s": 1000.0},
    "stop": {"max_rounds": 2},
    "evaluation": {"every_rounds": 1, "max_examples": 32},
}


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write a scenario dict (DETERMINISTIC updated with changes) to a file; return its path."""
    counter = {"n": 0}

    def write(changes: dict[str, Any] | None = None, base: dict[str, Any] | None = None) -> Path:
        counter["n"] += 1
        data = deep_update(base if base is not None else DETERMINISTIC, changes or {})
        data.setdefault("output_dir", str(tmp_path / "runs"))
        path = tmp_path / f"scenario{counter['n']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def run(tmp_path: Path):
    """Run a scenario file; return (result, frames)."""

    def go(path: Path, overrides: list[str] | None = None, **kwargs: Any) -> tuple[RunResult, dict[str, pd.DataFrame]]:
        loaded = load_scenario(path, overrides)
        result = run_scenario(loaded, progress=False, **kwargs)
        frames = {p.stem: pd.read_parquet(p) for p in sorted(result.run_dir.glob("*.parquet"))}
        return result, frames

    return go


def minilm_bundle_and_task(seq_len: int, n_devices: int, eval_examples: int):
    """MiniLM-L6 with LoRA r=4 and an IID Reuters-R8 task, for unit tests that need the real model."""
    import numpy as np

    from fleetsim.spec.scenario import LoraSpec, PartitionSpec
    from fleetsim.train import assets
    from fleetsim.train.data import build_task
    from fleetsim.train.models import load_model

    bundle = load_model(str(assets.model_dir("minilm-l6")), 8, LoraSpec(r=4, alpha=8), init_seed=0)
    task = build_task(
        dataset_id="reuters-r8",
        model_key="minilm-test",
        tokenizer=bundle.tokenizer,
        seq_len=seq_len,
        n_devices=n_devices,
        partition=PartitionSpec(kind="iid"),
        eval_max_examples=eval_examples,
        rng_partition=np.random.default_rng(0),
        rng_eval=np.random.default_rng(1),
        scenario_file="test",
    )
    return bundle, task


def make_result(device: int, n_samples: int, state: dict[str, Any], mask: Any = None) -> Any:
    """A delivered update of ``device`` with ``n_samples`` examples, trained state ``state`` and the blocks
    that ran in each step (``mask``, default: one step, two blocks, both run)."""
    import numpy as np

    from fleetsim.core.updates import TrainConfig, UpdatePlan, UpdateResult

    mask = np.ones((1, 2), dtype=bool) if mask is None else mask
    plan = UpdatePlan(0, device, TrainConfig(mask.shape[0], 1, 8, 0.1), 0, np.arange(n_samples), mask)
    return UpdateResult(plan, state, 0.0, 0.0, 0.0)


def count_forwards(bundle: Any) -> tuple[list[int], list[Any]]:
    """Forward calls per block (a list updated in place) and the hook handles to remove afterwards."""
    calls = [0] * bundle.num_blocks
    handles = [
        block.register_forward_hook(lambda m, i, o, k=k: calls.__setitem__(k, calls[k] + 1))
        for k, block in enumerate(bundle.blocks)
    ]
    return calls, handles


class StubCounter:
    """A counter without a model: a step with n blocks costs ``(n + 1) · flops_per_block`` FLOPs and
    ``n · activation_bytes_per_block`` bytes of activations (use it for exact, millisecond tests)."""

    def __init__(self, n_blocks: int = 6, flops_per_block: int = 10**9, activation_bytes_per_block: int = 10**6):
        self.n_blocks = n_blocks
        self.frozen_bytes = 50 * 10**6
        self.trainable_bytes = 4 * 10**5
        self.flops_per_block = flops_per_block
        self.activation_bytes_per_block = activation_bytes_per_block

    def identity(self) -> dict[str, object]:
        return {"kind": "stub"}

    def count(self, batch_size: int, seq_len: int, n_active: int, trainable_depth: int | None = None) -> Any:
        from fleetsim.costs.counting import StepCost

        return StepCost((n_active + 1) * self.flops_per_block, n_active * self.activation_bytes_per_block)

    def describe(self) -> dict[str, object]:
        return {"proxy": None}


def stub_cost_model(n_blocks: int = 6, tensor_bytes: dict[str, int] | None = None) -> Any:
    from fleetsim.costs.cost_model import CostModel

    return CostModel(StubCounter(n_blocks), n_blocks, tensor_bytes)  # type: ignore[arg-type]


def plain_profile(**fields: Any) -> Any:
    """A deterministic 1 GFLOP/s, 1 Mbit/s, always-online device profile with ``fields`` replaced (every
    optional figure given is cited as "test")."""
    from fleetsim.spec.profiles import FIGURE_FIELDS, Constant, DeviceProfile

    base: dict[str, Any] = {
        "name": "p",
        "tier": "t",
        "usable_memory_gib": 1,
        "train_flops_per_s": 1e9,
        "downlink_mbps": Constant(dist="constant", value=1.0),
        "uplink_mbps": Constant(dist="constant", value=1.0),
        "availability": None,
        "failure_prob_per_update": 0.0,
        "straggler_sigma": 0.0,
        "train_power_w": 1,
        "radio_power_w": 1,
    }
    base |= fields
    return DeviceProfile(**base, sources={k: "test" for k in (*FIGURE_FIELDS, *fields)})
