"""Counting one training step: FLOPs with ``torch.utils.flop_counter.FlopCounterMode``, the bytes of
activations autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``), and the operations
dispatched and the bytes they move (:class:`~fleetsim.costs.op_counter.OpCounter`).

* FLOPs of a training step: one forward + backward at the configured batch size and sequence length.
  Optimizer-step FLOPs (elementwise, ~10 per trainable parameter) are not matmuls and are not counted.
* Activation memory: bytes of the unique tensor storages saved for backward during that forward,
  parameters excluded.
* Memory traffic and kernel calls of the same forward + backward (the shape-aware compute model of
  :mod:`fleetsim.costs.timing`); the optimizer step is not counted.

A :class:`Counter` measures steps of one architecture: the trained model itself
(:class:`~fleetsim.costs.model_counter.ModelCounter`) or a cost-model proxy built on the ``meta`` device
(:class:`~fleetsim.costs.proxies.MetaCounter`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from fleetsim.costs.op_counter import OpCounter

__all__ = ["Counter", "StepCost", "count_step", "library_versions"]


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose kernels and module code a count depends on (part of the cache key)."""
    from importlib import metadata

    return {pkg: metadata.version(pkg) for pkg in ("torch", "transformers", "peft")}


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
    return 2 * _attention_flops(query, key, value)


@dataclass(frozen=True)
class StepCost:
    """What one training step (forward + backward) does, counted on the executed step."""

    flops: int  # matrix products, 2 per multiply-add
    activation_bytes: int  # saved for backward: what the step holds at its peak
    memory_bytes: int = 0  # read + written by every operation that moves data (random numbers as compute)
    kernel_calls: int = 0  # aten operations dispatched, views included
    matmul_bytes: int = 0  # the part of memory_bytes that matrix products move


def count_step(model: torch.nn.Module, forward: dict[str, torch.Tensor]) -> StepCost:
    """Count FLOPs, saved-activation bytes, memory traffic and kernel calls of one forward + backward of
    ``model(**forward).loss``.

    Storages are deduplicated by their C++ storage object, which works for real and meta tensors alike.
    Torch's global RNG (dropout) is forked, so counting leaves it as it was.
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
    try:
        with torch.random.fork_rng(devices=[]), FlopCounterMode(display=False) as counter, OpCounter() as ops:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = model(**forward).loss
            if loss.requires_grad:  # a language model with every block skipped trains nothing: no backward
                loss.backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return StepCost(
        flops=int(counter.get_total_flops()),
        activation_bytes=int(sum(saved.values())),
        memory_bytes=ops.memory_bytes,
        kernel_calls=ops.kernel_calls,
        matmul_bytes=ops.matmul_bytes,
    )


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
