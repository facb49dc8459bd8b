"""Counting what a training step does besides FLOPs: tensor operations dispatched and the bytes they move.

:class:`OpCounter` is a ``TorchDispatchMode``: it sees every aten operation that reaches a kernel, after
autograd (so backward operations too), on real and ``meta`` tensors alike (shapes suffice), and counts

* ``kernel_calls`` — operations dispatched, views included (each costs host time to dispatch: the per-call
  overhead that dominates small steps) but ``detach``, autograd's internal aliasing, whose number the
  saved-tensor hooks of :func:`~fleetsim.costs.counting.count_step` change;
* ``memory_bytes`` — bytes of the tensor arguments and results of every operation that moves data: the
  traffic that the elementwise, normalization, softmax and copy work is timed by, and that matrix products
  (the operations ``torch.utils.flop_counter`` has a formula for) add to their FLOPs — an additive
  roofline (Williams et al. 2009, "Roofline", CACM 52(4)), under which a skinny product (LoRA's rank-r
  factors: many bytes per FLOP) costs its traffic and a square one its FLOPs. Operations that move no data
  (views, ``_unsafe_view``, ``empty*``) count no bytes;
* ``matmul_bytes`` — the part of ``memory_bytes`` that matrix products move (calibration splits measured
  time by it: :mod:`fleetsim.costs.calibration`).

Bytes are ``numel · element_size`` of each tensor argument and result, as if each were read or written once
(no cache reuse); a broadcast argument counts its logical size.

Random numbers (dropout's ``bernoulli_``, ``rand`` …) are compute, not traffic: drawing one costs about
what moving :data:`RANDOM_NUMBER_BYTES` bytes costs, so each number drawn adds that many bytes. Measured on
the 2-core AMD EPYC where fleetsim is developed (torch 2.13, 2 threads, ``torch.profiler``): ``bernoulli_``
took 9.8 ns per number (96 ms for MiniLM-L6's 9.84 M numbers at batch 16 × 64), what 128 bytes take at
the 13 GB/s that the other operations of the step moved. Without it, a model trained with dropout (BERT
family) looks far more bandwidth-hungry per byte than one without (LLaMA family). A device whose random
numbers are relatively cheaper (GPUs' Philox) is over-charged for dropout by this convention.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry

__all__ = ["RANDOM_NUMBER_BYTES", "OpCounter", "is_matmul", "moves_data"]

RANDOM_NUMBER_BYTES = 128

_aten = torch.ops.aten
_NO_TRAFFIC = {_aten._unsafe_view, _aten.empty, _aten.empty_like, _aten.empty_strided, _aten.new_empty}
_RANDOM = {
    _aten.bernoulli,
    _aten.bernoulli_,
    _aten.native_dropout,
    _aten.rand,
    _aten.rand_like,
    _aten.randn,
    _aten.randn_like,
    _aten.normal_,
    _aten.uniform_,
    _aten.random_,
    _aten.exponential_,
}


def is_matmul(func: Any) -> bool:
    """Whether ``func`` (an aten overload or overload packet) is timed by its FLOPs: it has a FLOP formula."""
    return func in flop_registry or getattr(func, "overloadpacket", None) in flop_registry


def moves_data(func: Any) -> bool:
    """Whether ``func`` (an aten overload or overload packet) reads or writes tensor data: not a view, not
    an allocation."""
    packet = getattr(func, "overloadpacket", func)
    if packet in _NO_TRAFFIC:
        return False
    if packet is not func:  # an overload
        return not func.is_view
    return not all(getattr(packet, name).is_view for name in packet.overloads())  # a packet: all its overloads


class OpCounter(TorchDispatchMode):
    """Counts aten operations dispatched inside the ``with`` block and the bytes they move.

    Nest it inside ``FlopCounterMode`` (entered after it), so it sees each operation as the program
    dispatches it, before the FLOP counter's own decompositions.
    """

    def __init__(self) -> None:
        super().__init__()
        self.kernel_calls = 0
        self.memory_bytes = 0
        self.matmul_bytes = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.overloadpacket is _aten.detach:
            return out
        self.kernel_calls += 1
        if not moves_data(func):
            return out
        moved = _tensor_bytes((args, kwargs, out))
        self.memory_bytes += moved
        if is_matmul(func):
            self.matmul_bytes += moved
        elif func.overloadpacket in _RANDOM:
            drawn = next(t for t in tree_leaves(out) if isinstance(t, torch.Tensor))
            self.memory_bytes += RANDOM_NUMBER_BYTES * drawn.numel()
        return out


def _tensor_bytes(tree: Any) -> int:
    """Logical bytes of every tensor in ``tree`` (nested tuples, lists, dicts)."""
    return sum(t.numel() * t.element_size() for t in tree_leaves(tree) if isinstance(t, torch.Tensor))
