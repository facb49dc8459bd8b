"""Counting steps of the trained model itself, on real examples of the training split."""

from __future__ import annotations

import numpy as np
import torch

from fleetsim.costs.counting import Counter, StepCost, count_step
from fleetsim.train.blocks import BlockSwitch, train_top_blocks
from fleetsim.train.data import Split
from fleetsim.train.models import ModelBundle

__all__ = ["ModelCounter"]


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
        task = self.bundle.objective.task
        return {
            "model": self.model_key,
            "trainable": names,
            "lora_dropout": self.bundle.lora_dropout,
            "kind": "model",
            **({"task": task} if task != "classification" else {}),
        }

    def count(self, batch_size: int, seq_len: int, n_active: int, trainable_depth: int | None = None) -> StepCost:
        rows = torch.arange(batch_size) % len(self.probe)
        forward = {
            "input_ids": self.probe.input_ids[rows, :seq_len],
            "attention_mask": self.probe.attention_mask[rows, :seq_len],
            "labels": self.bundle.objective.targets(self.probe, rows, seq_len),
        }
        mask = np.arange(self.n_blocks) < n_active
        with self.switch.active(mask), train_top_blocks(self.bundle.blocks, trainable_depth):
            return count_step(self.bundle.model, forward)
