"""One real client update: LoRA fine-tuning of the shared model on a device's shard.

The trainer owns one LoRA-wrapped model and reuses it for every update: it loads the update's start
state, trains ``local_steps`` optimizer steps on mini-batches drawn from the device's shard — each step
running only the blocks the plan's mask marks active (layer dropout) — and returns the new trainable
state. Batch order comes from a ``torch.Generator`` seeded with the plan's seed, and dropout inside the
model from torch's RNG forked and seeded with it, so an update is reproducible and torch's global RNG is
left untouched. A block skipped in a step gets no gradient (``None``), so the optimizer leaves its LoRA
untouched in that step.
"""

from __future__ import annotations

import torch

from fleetsim.core.updates import UpdatePlan, UpdateResult
from fleetsim.train.blocks import BlockSwitch, train_top_blocks
from fleetsim.train.data import Split
from fleetsim.train.hardware import training_precision
from fleetsim.train.models import ModelBundle
from fleetsim.train.optimizers import OPTIMIZERS

__all__ = ["LocalTrainer", "batch_indices"]


def batch_indices(n_samples: int, size: int, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Positions into a shard of ``n_samples`` for ``steps`` mini-batches of ``size`` (at most ``n_samples``):
    shuffled epochs, reshuffled when exhausted."""
    out: list[torch.Tensor] = []
    order = torch.randperm(n_samples, generator=generator)
    cursor = 0
    for _ in range(steps):
        if cursor + size > n_samples:
            order = torch.randperm(n_samples, generator=generator)
            cursor = 0
        out.append(order[cursor : cursor + size])
        cursor += size
    return out


class LocalTrainer:
    """Runs client updates for real on one model held in memory, on the device the model is on.

    The training split is moved to that device once. ``precision`` is ``fp32`` or ``bf16`` (autocast
    forward passes, :mod:`.hardware`); the probe losses the configurator reads are always fp32. ``compile``
    compiles each block with ``torch.compile`` (blocks, not the model: layer dropout changes which blocks
    run, and a compiled block is reused by every mask).
    """

    def __init__(self, bundle: ModelBundle, train: Split, precision: str = "fp32", compile: bool = False):
        self.bundle = bundle
        self.train_split = train.to(bundle.device)
        self.precision = precision
        self.switch = BlockSwitch(bundle.model, bundle.blocks)
        if compile:
            for block in bundle.blocks:
                block.compile()

    @torch.no_grad()
    def _probe_loss(self, plan: UpdatePlan) -> float | None:
        """Full-depth mean loss on the plan's probe examples (eval mode), or None without a probe."""
        if plan.probe is None or len(plan.probe) == 0:
            return None
        rows = torch.as_tensor(plan.probe, dtype=torch.long, device=self.bundle.device)
        data, seq = self.train_split, plan.config.seq_len
        self.bundle.model.eval()
        out = self.bundle.model(
            input_ids=data.input_ids[rows, :seq],
            attention_mask=data.attention_mask[rows, :seq],
            labels=self.bundle.objective.targets(data, rows, seq),
        )
        return float(out.loss)

    def train(self, plan: UpdatePlan, start_state: dict[str, torch.Tensor]) -> UpdateResult:
        """Train ``plan`` starting from ``start_state``; return the resulting trainable state."""
        bundle, config = self.bundle, plan.config
        bundle.load_state(start_state)
        before = self._probe_loss(plan)
        bundle.model.train()
        with torch.random.fork_rng(devices=[]), train_top_blocks(bundle.blocks, config.trainable_depth):
            torch.manual_seed(plan.seed)  # dropout inside the model
            return self._train_steps(plan, before)

    def _train_steps(self, plan: UpdatePlan, before: float | None) -> UpdateResult:
        bundle, config, model = self.bundle, plan.config, self.bundle.model
        generator = torch.Generator().manual_seed(plan.seed)
        shard = torch.as_tensor(plan.shard, dtype=torch.long)
        device = bundle.device
        params = [p for p in bundle.trainable.values() if p.requires_grad]
        optimizer = OPTIMIZERS[config.optimizer].build(params, config.lr, config.weight_decay)
        data, seq = self.train_split, config.seq_len
        losses: list[float] = []
        batches = batch_indices(len(shard), config.rows_per_step(len(shard)), config.local_steps, generator)
        for positions, active in zip(batches, plan.mask, strict=True):
            rows = shard[positions].to(device)
            # skipped blocks: no forward, no saved activations, no backward
            with self.switch.active(active), training_precision(device, self.precision):
                out = model(
                    input_ids=data.input_ids[rows, :seq],
                    attention_mask=data.attention_mask[rows, :seq],
                    labels=bundle.objective.targets(data, rows, seq),
                )
            if out.loss.requires_grad:  # a language model with every block skipped has nothing to train
                out.loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(float(out.loss.detach()))
        return UpdateResult(
            probe_loss_before=before,
            probe_loss_after=self._probe_loss(plan),
            plan=plan,
            state=bundle.state(),
            train_loss_first=losses[0],
            train_loss_last=losses[-1],
            train_loss_mean=sum(losses) / len(losses),
        )
