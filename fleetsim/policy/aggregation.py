"""Aggregation of trainable tensors: FedAvg (McMahan et al. 2017, Alg. 1) weighted per tensor.

``weighted_average`` takes one weight per (update, tensor) so that later strategies can weight a block's
LoRA by how many steps it was active on each client; plain FedAvg weights every tensor by the client's
number of samples. A tensor whose weights are all zero keeps its global value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from fleetsim.core.updates import UpdateResult

__all__ = ["block_fedavg", "fedavg", "weighted_average"]


def weighted_average(
    global_state: dict[str, torch.Tensor],
    results: Sequence[UpdateResult],
    weight: Callable[[UpdateResult, str], float],
) -> dict[str, torch.Tensor]:
    """``θ_k ← Σ_i w_ik θ_ik / Σ_i w_ik`` for every tensor k; unchanged where ``Σ_i w_ik = 0``."""
    out: dict[str, torch.Tensor] = {}
    for name, current in global_state.items():
        weights = [float(weight(r, name)) for r in results]
        total = sum(weights)
        if total <= 0.0:
            out[name] = current.clone()
            continue
        acc = torch.zeros_like(current)
        for w, result in zip(weights, results, strict=True):
            if w > 0.0:
                acc.add_(result.state[name], alpha=w / total)
        out[name] = acc
    return out


def fedavg(global_state: dict[str, torch.Tensor], results: Sequence[UpdateResult]) -> dict[str, torch.Tensor]:
    """FedAvg over the delivered updates, weighted by each client's number of samples."""
    return weighted_average(global_state, results, lambda r, _name: r.plan.n_samples)


def block_fedavg(
    global_state: dict[str, torch.Tensor], results: Sequence[UpdateResult], block_of: dict[str, int | None]
) -> dict[str, torch.Tensor]:
    """FedAvg with partial training (layer dropout): a block's tensors are averaged over the clients that
    trained it, ``w_il = n_i × (steps block l was active on client i)``; tensors outside the blocks (the
    head) use ``n_i × local_steps``. A block no client trained keeps its global value.
    (DropPEFT reconstruction §1.2, "Aggregation".)
    """
    steps = {id(r): r.plan.block_steps for r in results}

    def weight(result: UpdateResult, name: str) -> float:
        block = block_of[name]
        active = result.plan.config.local_steps if block is None else int(steps[id(result)][block])
        return float(result.plan.n_samples * active)

    return weighted_average(global_state, results, weight)
