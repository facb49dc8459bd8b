"""A model's transformer blocks: finding them, running a subset of them, training only the top ones.

Skipping is real: the model's block ``ModuleList`` is swapped for the active subset around the forward pass,
so a skipped block runs no forward, saves no activations, takes no backward and its LoRA gets no gradient.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from torch import nn

__all__ = ["BlockSwitch", "find_blocks", "train_top_blocks"]


def find_blocks(model: nn.Module, num_layers: int) -> nn.ModuleList:
    """The ``nn.ModuleList`` holding the ``num_layers`` transformer blocks (the largest such list)."""
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == num_layers]
    if not candidates:
        raise ValueError(f"no nn.ModuleList of {num_layers} blocks found in {type(model).__name__}")
    return max(candidates, key=lambda m: sum(p.numel() for p in m.parameters()))


class BlockSwitch:
    """Runs a model with only some of its blocks, by swapping the block ``ModuleList`` for a subset.

    Works for any model whose forward iterates over its blocks' ``ModuleList`` (BERT's ``encoder.layer``,
    LLaMA's ``model.layers``). Parameters are the same objects, so optimizers are unaffected.
    """

    def __init__(self, model: nn.Module, blocks: nn.ModuleList):
        for name, module in model.named_modules():
            if module is blocks:
                parent_name, _, self.attr = name.rpartition(".")
                self.parent = model.get_submodule(parent_name)
                break
        else:
            raise ValueError("blocks are not a submodule of model")
        self.blocks = blocks

    @contextmanager
    def active(self, mask: np.ndarray) -> Iterator[None]:
        """Inside the block, only blocks with ``mask[i]`` True run (in their original order)."""
        if bool(np.all(mask)):
            yield
            return
        subset = nn.ModuleList([self.blocks[i] for i in np.flatnonzero(mask)])
        setattr(self.parent, self.attr, subset)
        try:
            yield
        finally:
            setattr(self.parent, self.attr, self.blocks)


@contextmanager
def train_top_blocks(blocks: nn.ModuleList, depth: int | None) -> Iterator[None]:
    """Freeze the trainable parameters of every block below the top ``depth`` ones (None: change nothing).

    With the embeddings frozen, autograd then builds no graph through the lower blocks: they run forward
    only, save no activations and take no backward (FedAdapter-style training of the top blocks).
    """
    if depth is None or depth >= len(blocks):
        yield
        return
    frozen = [p for block in list(blocks)[: len(blocks) - depth] for p in block.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
