"""What a client update costs: FLOPs and memory counted on the real model, bytes of real tensors.

* FLOPs per training step: ``torch.utils.flop_counter.FlopCounterMode`` around one real forward + backward
  of the model at the configured batch size and sequence length (counted once per key, then cached).
  Optimizer-step FLOPs (elementwise, ~10 per trainable parameter) are not matmuls and are not counted.
* Activation memory: bytes of the unique tensor storages autograd saves for backward during that forward,
  excluding parameters (``torch.autograd.graph.saved_tensors_hooks``).
* Peak memory (DESIGN.md, cost model): frozen weights + trainable parameters, their gradients and the
  optimizer state (AdamW: 2 fp32 moments) + activations.
* Bytes on the wire: the fp32 tensors sent (global trainable state down, the update up).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from fleetsim.data import Split
from fleetsim.models import ModelBundle
from fleetsim.updates import TrainConfig, UpdateCost

__all__ = ["CostModel", "StepCost"]

_OPTIMIZER_STATES = {"adamw": 2, "sgd": 0}


@dataclass(frozen=True)
class StepCost:
    flops: int
    activation_bytes: int


class CostModel:
    """Counts and caches step costs of one model; turns a :class:`TrainConfig` into an :class:`UpdateCost`."""

    def __init__(self, bundle: ModelBundle, probe_data: Split):
        self.bundle = bundle
        self.probe_data = probe_data
        self._steps: dict[tuple[int, int], StepCost] = {}
        self.transfer_bytes = bundle.trainable_param_bytes

    def step(self, batch_size: int, seq_len: int) -> StepCost:
        """Cost of one training step (forward + backward) at full depth; measured once per key."""
        key = (batch_size, seq_len)
        if key not in self._steps:
            self._steps[key] = self._measure(batch_size, seq_len)
        return self._steps[key]

    def _measure(self, batch_size: int, seq_len: int) -> StepCost:
        model = self.bundle.model
        rows = torch.arange(batch_size) % len(self.probe_data)
        ids = self.probe_data.input_ids[rows, :seq_len]
        mask = self.probe_data.attention_mask[rows, :seq_len]
        labels = self.probe_data.labels[rows]
        param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in param_storages:
                saved[ptr] = storage.nbytes()
            return t

        was_training = model.training
        model.train()
        rng_state = torch.get_rng_state()
        try:
            with FlopCounterMode(display=False) as counter:
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
        finally:
            model.zero_grad(set_to_none=True)
            torch.set_rng_state(rng_state)
            model.train(was_training)
        return StepCost(flops=int(counter.get_total_flops()), activation_bytes=int(sum(saved.values())))

    def update(self, config: TrainConfig) -> UpdateCost:
        """Cost of a whole client update with ``config``."""
        step = self.step(config.batch_size, config.seq_len)
        trainable = self.bundle.trainable_param_bytes
        states = _OPTIMIZER_STATES[config.optimizer]
        peak = self.bundle.frozen_param_bytes + trainable * (2 + states) + step.activation_bytes
        return UpdateCost(
            flops=step.flops * config.local_steps,
            peak_memory_bytes=peak,
            download_bytes=self.transfer_bytes,
            upload_bytes=self.transfer_bytes,
        )
