"""What a client update costs: FLOPs and memory counted on a real model, bytes of real tensors.

* FLOPs of a training step: ``torch.utils.flop_counter.FlopCounterMode`` around one forward + backward at the
  configured batch size and sequence length. Optimizer-step FLOPs (elementwise, ~10 per trainable
  parameter) are not matmuls and are not counted.
* Activation memory: bytes of the unique tensor storages that autograd saves for backward during that
  forward, parameters excluded (``torch.autograd.graph.saved_tensors_hooks``).
* Blocks are identical, so a step's cost is affine in the number of blocks it runs — except the first
  running block, whose input needs no gradient (the frozen embeddings' output), so its backward skips the
  input-gradient matmuls: ``cost(n) = cost(1) + (n − 1) · (cost(L) − cost(1)) / (L − 1)`` for n ≥ 1.
  Each (batch, seq_len) is counted three times — with 0, 1 and L blocks — and cached in memory and on
  disk; any other count follows exactly (``tests/test_costs.py`` checks it against a direct count).
* Peak memory (DESIGN.md, cost model): frozen weights + trainable parameters, their gradients and the
  optimizer state (AdamW: 2 moments) + the activations of the step with the most active blocks.
* Bytes on the wire: the trainable tensors sent (global state down, the update up).

A *counter* measures steps: :class:`ModelCounter` on the trained model itself, or
:class:`~fleetsim.costs.proxies.MetaCounter` on another architecture built on the ``meta`` device (a cost-model
proxy: its costs set device times while the small model is trained for accuracy).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from fleetsim.core.updates import UpdateCost, UpdatePlan
from fleetsim.train import assets
from fleetsim.train.blocks import BlockSwitch, train_top_blocks
from fleetsim.train.data import Split
from fleetsim.train.models import ModelBundle

__all__ = ["CostModel", "Counter", "ModelCounter", "StepCost", "count_step"]

_OPTIMIZER_STATES = {"adamw": 2, "sgd": 0}
_COST_CODE_VERSION = 4  # bump when counting changes, to invalidate the disk cache


def _attention_flops(q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...]) -> int:
    """Q·Kᵀ and P·V of scaled dot-product attention: 2·B·H·T·S·(d_qk + d_v) (keys may have fewer heads)."""
    batch, heads, t_q, d_qk = q
    s_k, d_v = k[-2], v[-1]
    return 2 * batch * heads * t_q * s_k * (d_qk + d_v)


# torch's FlopCounterMode has no formula for the CPU flash-attention kernel that SDPA uses on CPU
# (LLaMA-family models here), so attention would go uncounted; register the standard one
# (backward: dQ, dK, dV and dP = 2× the forward matmuls, as torch's own sdpa_backward_flop_count).
@register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu)
def _sdpa_cpu_flops(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return _attention_flops(query, key, value)


@register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _sdpa_cpu_backward_flops(
    grad: Any, query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    return 2 * _attention_flops(query, key, value)  # bump when counting changes, to invalidate the disk cache


@dataclass(frozen=True)
class StepCost:
    flops: int
    activation_bytes: int


def count_step(model: torch.nn.Module, forward: dict[str, torch.Tensor]) -> StepCost:
    """Count FLOPs and saved-activation bytes of one forward + backward of ``model(**forward).loss``.

    Storages are deduplicated by their C++ storage object, which works for real and meta tensors alike.
    """
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in params:
            saved[storage._cdata] = storage.nbytes()
        return t

    was_training = model.training
    model.train()
    rng_state = torch.get_rng_state()
    try:
        with FlopCounterMode(display=False) as counter:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = model(**forward).loss
            loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        torch.set_rng_state(rng_state)
        model.train(was_training)
    return StepCost(flops=int(counter.get_total_flops()), activation_bytes=int(sum(saved.values())))


class Counter(ABC):
    """Measures the cost of one training step of some architecture."""

    n_blocks: int
    frozen_bytes: int  # weights that stay resident, at their storage dtype
    trainable_bytes: int  # LoRA tensors and head

    @abstractmethod
    def identity(self) -> dict[str, object]:
        """What the counts depend on (for the disk cache key)."""

    @abstractmethod
    def count(self, batch_size: int, seq_len: int, n_active: int, trainable_depth: int | None = None) -> StepCost:
        """Count one step with the first ``n_active`` blocks running (LoRA trained in the top
        ``trainable_depth`` blocks only, when given)."""

    def describe(self) -> dict[str, object]:
        return {"proxy": None}


class ModelCounter(Counter):
    """Counts steps of the trained model itself, on real data from ``probe``."""

    def __init__(self, bundle: ModelBundle, probe: Split, model_key: str):
        self.bundle = bundle
        self.probe = probe
        self.model_key = model_key
        self.switch = BlockSwitch(bundle.model, bundle.blocks)
        self.n_blocks = bundle.num_blocks
        self.frozen_bytes = bundle.frozen_param_bytes
        self.trainable_bytes = bundle.trainable_param_bytes

    def identity(self) -> dict[str, object]:
        names = sorted((n, tuple(p.shape)) for n, p in self.bundle.trainable.items())
        return {"model": self.model_key, "trainable": names, "kind": "model"}

    def count(self, batch_size: int, seq_len: int, n_active: int, trainable_depth: int | None = None) -> StepCost:
        rows = torch.arange(batch_size) % len(self.probe)
        forward = {
            "input_ids": self.probe.input_ids[rows, :seq_len],
            "attention_mask": self.probe.attention_mask[rows, :seq_len],
            "labels": self.probe.labels[rows],
        }
        mask = np.arange(self.n_blocks) < n_active
        with self.switch.active(mask), train_top_blocks(self.bundle.blocks, trainable_depth):
            return count_step(self.bundle.model, forward)


class CostModel:
    """Turns an :class:`UpdatePlan` into an :class:`UpdateCost`, from counted step costs.

    ``model_blocks`` is the number of blocks of the *trained* model; plans' masks refer to those. With a
    proxy counter, a step that runs a fraction f of the trained model's blocks costs what the proxy costs
    with f of its own blocks.
    """

    def __init__(self, counter: Counter, model_blocks: int, tensor_bytes: dict[str, int] | None = None):
        """``tensor_bytes``: bytes of each trainable tensor of the trained model (to cost partial uploads)."""
        self.counter = counter
        self.model_blocks = model_blocks
        self.tensor_bytes = tensor_bytes or {}
        self.transfer_bytes = counter.trainable_bytes
        self._anchors: dict[tuple[int, int], tuple[StepCost, StepCost, StepCost]] = {}

    def _anchor_counts(self, batch_size: int, seq_len: int) -> tuple[StepCost, StepCost, StepCost]:
        """Counted costs with 0, 1 and all blocks of the counter's architecture."""
        key = (batch_size, seq_len)
        if key not in self._anchors:
            n = self.counter.n_blocks
            self._anchors[key] = (
                self._cached_count(batch_size, seq_len, 0),
                self._cached_count(batch_size, seq_len, 1),
                self._cached_count(batch_size, seq_len, n),
            )
        return self._anchors[key]

    def _cached_count(self, batch_size: int, seq_len: int, n_active: int, depth: int | None = None) -> StepCost:
        ident = {**self.counter.identity(), "b": batch_size, "t": seq_len, "n": n_active, "v": _COST_CODE_VERSION}
        if depth is not None:
            ident["depth"] = depth
        digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]
        path = assets.cache_dir() / "costs" / f"{digest}.json"
        if path.is_file():
            return StepCost(**json.loads(path.read_text()))
        cost = self.counter.count(batch_size, seq_len, n_active, depth)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(cost)))
        tmp.replace(path)
        return cost

    def step(self, batch_size: int, seq_len: int, n_active: int | None = None) -> StepCost:
        """Cost of one step running ``n_active`` of the trained model's blocks (default: all)."""
        none, one, full = self._anchor_counts(batch_size, seq_len)
        if n_active is None or n_active == self.model_blocks:
            return full
        if n_active == 0:
            return none
        blocks = n_active / self.model_blocks * self.counter.n_blocks  # in the counter's blocks
        extra = (blocks - 1) / max(self.counter.n_blocks - 1, 1)
        return StepCost(
            flops=one.flops + round(extra * (full.flops - one.flops)),
            activation_bytes=one.activation_bytes + round(extra * (full.activation_bytes - one.activation_bytes)),
        )

    def top_blocks_step(self, batch_size: int, seq_len: int, depth: int) -> StepCost:
        """A full-depth step whose LoRA is trained in the top ``depth`` of the trained model's blocks only
        (mapped to the same fraction of the counter's blocks); counted directly and cached."""
        n = self.counter.n_blocks
        counter_depth = min(n, max(1, round(depth / self.model_blocks * n)))
        return self._cached_count(batch_size, seq_len, n, counter_depth)

    def peak_memory_bytes(self, optimizer: str, activation_bytes: int) -> int:
        trainable = self.counter.trainable_bytes
        return self.counter.frozen_bytes + trainable * (2 + _OPTIMIZER_STATES[optimizer]) + activation_bytes

    def sent_bytes(self, shared: frozenset[str] | None) -> int:
        """Bytes sent each way when only the tensors in ``shared`` travel (None: all trainable tensors).

        With a proxy, the proxy's trainable bytes are scaled by the shared share of the trained model's."""
        if shared is None or not self.tensor_bytes:
            return self.transfer_bytes
        part = sum(b for name, b in self.tensor_bytes.items() if name in shared)
        return round(self.transfer_bytes * part / sum(self.tensor_bytes.values()))

    def update(self, plan: UpdatePlan, shared: frozenset[str] | None = None) -> UpdateCost:
        """Cost of the whole client update ``plan`` (every local step, with its active blocks)."""
        config = plan.config
        if config.trainable_depth is not None:  # every block runs; only the top ones train
            step = self.top_blocks_step(config.batch_size, config.seq_len, config.trainable_depth)
            flops, activations = step.flops * config.local_steps, step.activation_bytes
        else:
            counts = plan.mask.sum(axis=1)
            steps = {int(n): self.step(config.batch_size, config.seq_len, int(n)) for n in np.unique(counts)}
            flops = sum(steps[int(n)].flops for n in counts)
            activations = max(steps[int(n)].activation_bytes for n in counts)
        return UpdateCost(
            flops=int(flops),
            peak_memory_bytes=self.peak_memory_bytes(config.optimizer, activations),
            download_bytes=self.sent_bytes(shared),
            upload_bytes=self.sent_bytes(shared),
        )

    def describe(self) -> dict[str, object]:
        return self.counter.describe()
