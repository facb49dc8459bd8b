"""What a client update costs: FLOPs, memory traffic, kernel calls and peak memory from counted steps, bytes
of the tensors that travel.

* Blocks are identical, so a step's cost is affine in the number of blocks it runs — except the first
  running block, whose input needs no gradient (the frozen embeddings' output), so its backward skips the
  input-gradient matmuls: ``cost(n) = cost(1) + (n − 1) · (cost(L) − cost(1)) / (L − 1)`` for n ≥ 1.
  Each (batch, seq_len) is counted three times — with 0, 1 and L blocks — and cached in memory and, given a
  cache folder, on disk; any other count follows exactly (``tests/costs`` checks it against a direct count).
  Every counted figure (FLOPs, activations, memory traffic, kernel calls) is interpolated alike,
  and an update's FLOPs, traffic and calls are summed over its steps.
* Peak memory (DESIGN.md, cost model): frozen weights + trainable parameters, their gradients and the
  optimizer's state + the activations of the step with the most active blocks.
* The disk cache is keyed by everything a count depends on: the counter's identity (model, trainable tensors,
  LoRA dropout, which saves masks for backward), the library versions and the counting code's version.
* Bytes on the wire: the trainable tensors sent (global state down, the update up); only the shared ones
  under personalization.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fleetsim.core.updates import TrainConfig, UpdateCost, UpdatePlan
from fleetsim.costs.counting import Counter, StepCost, library_versions
from fleetsim.train.optimizers import OPTIMIZERS

__all__ = ["CostModel", "MeanStep"]

_COST_CODE_VERSION = 5  # bump when counting changes, to invalidate the disk cache
_FIELDS = [f.name for f in fields(StepCost)]
_UPDATES_CACHED = 4096  # update costs kept (by config, batch and blocks per step); cleared when full


@dataclass(frozen=True)
class MeanStep:
    """Expected work of one step (fractional: an average over the steps a dropout schedule draws)."""

    flops: float
    memory_bytes: float
    kernel_calls: float


class CostModel:
    """Turns an :class:`UpdatePlan` into an :class:`UpdateCost`, from counted step costs.

    ``model_blocks`` is the number of blocks of the *trained* model; plans' masks refer to those. With a
    proxy counter, a step that runs a fraction f of the trained model's blocks costs what the proxy costs
    with f of its own blocks.
    """

    def __init__(
        self,
        counter: Counter,
        model_blocks: int,
        tensor_bytes: dict[str, int] | None = None,
        cache_dir: Path | None = None,
    ):
        """``tensor_bytes``: bytes of each trainable tensor of the trained model (to cost partial uploads);
        ``cache_dir``: where counted steps are kept across runs (None: in memory only)."""
        self.counter = counter
        self.model_blocks = model_blocks
        self.tensor_bytes = tensor_bytes or {}
        self.transfer_bytes = counter.trainable_bytes
        self.cache_dir = cache_dir
        self._anchors: dict[tuple[int, int], tuple[StepCost, StepCost, StepCost]] = {}
        self._updates: dict[tuple[TrainConfig, int, tuple[int, ...]], UpdateCost] = {}

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
        if self.cache_dir is None:
            return self.counter.count(batch_size, seq_len, n_active, depth)
        ident = {
            **self.counter.identity(),
            "libraries": library_versions(),
            "b": batch_size,
            "t": seq_len,
            "n": n_active,
            "v": _COST_CODE_VERSION,
        }
        if depth is not None:
            ident["depth"] = depth
        digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]
        path = self.cache_dir / f"{digest}.json"
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
        return StepCost(**{f: getattr(one, f) + round(extra * (getattr(full, f) - getattr(one, f))) for f in _FIELDS})

    def mean_step(self, batch_size: int, seq_len: int, blocks: float) -> MeanStep:
        """Expected work of a step that runs ``blocks`` blocks on average (a schedule's expectation):
        interpolated between the steps with ⌊blocks⌋ and ⌈blocks⌉ blocks."""
        low, high = math.floor(blocks), math.ceil(blocks)
        lo, hi = self.step(batch_size, seq_len, low), self.step(batch_size, seq_len, high)
        w = blocks - low if high != low else 0.0

        def mean(field: str) -> float:
            value = float(getattr(lo, field))
            return value + w * (getattr(hi, field) - value) if w else value

        return MeanStep(flops=mean("flops"), memory_bytes=mean("memory_bytes"), kernel_calls=mean("kernel_calls"))

    def mean_step_flops(self, batch_size: int, seq_len: int, blocks: float) -> float:
        """FLOPs of :meth:`mean_step`."""
        return self.mean_step(batch_size, seq_len, blocks).flops

    def top_blocks_step(self, batch_size: int, seq_len: int, depth: int) -> StepCost:
        """A full-depth step whose LoRA is trained in the top ``depth`` of the trained model's blocks only
        (mapped to the same fraction of the counter's blocks); counted directly and cached."""
        n = self.counter.n_blocks
        counter_depth = min(n, max(1, round(depth / self.model_blocks * n)))
        return self._cached_count(batch_size, seq_len, n, counter_depth)

    def peak_memory_bytes(self, optimizer: str, activation_bytes: int) -> int:
        """Frozen weights + trainable tensors × (1 + gradient + optimizer state) + activations."""
        trainable = self.counter.trainable_bytes
        return self.counter.frozen_bytes + trainable * (2 + OPTIMIZERS[optimizer].state_tensors) + activation_bytes

    def sent_bytes(self, shared: frozenset[str] | None) -> int:
        """Bytes sent each way when only the tensors in ``shared`` travel (None: all trainable tensors).

        With a proxy, the proxy's trainable bytes are scaled by the shared share of the trained model's."""
        if shared is None or not self.tensor_bytes:
            return self.transfer_bytes
        part = sum(b for name, b in self.tensor_bytes.items() if name in shared)
        return round(self.transfer_bytes * part / sum(self.tensor_bytes.values()))

    def update(self, plan: UpdatePlan) -> UpdateCost:
        """Cost of the whole client update ``plan`` (every local step, with its active blocks, at the batch
        its shard allows; the tensors its config exchanges)."""
        config = plan.config
        batch = config.rows_per_step(plan.n_samples)
        # The cost depends on the config, the batch and how many blocks each step runs, in any order.
        counts = () if config.trainable_depth is not None else tuple(sorted(plan.blocks_per_step))
        key = (config, batch, counts)
        cost = self._updates.get(key)
        if cost is None:
            if len(self._updates) >= _UPDATES_CACHED:
                self._updates.clear()
            cost = self._updates[key] = self._update(config, batch, counts)
        return cost

    def _update(self, config: TrainConfig, batch: int, counts: tuple[int, ...]) -> UpdateCost:
        if config.trainable_depth is not None:  # every block runs; only the top ones train
            steps = [self.top_blocks_step(batch, config.seq_len, config.trainable_depth)] * config.local_steps
        else:
            by_count = {n: self.step(batch, config.seq_len, n) for n in set(counts)}
            steps = [by_count[n] for n in counts]
        return UpdateCost(
            flops=sum(s.flops for s in steps),
            peak_memory_bytes=self.peak_memory_bytes(config.optimizer, max(s.activation_bytes for s in steps)),
            download_bytes=self.sent_bytes(config.shared),
            upload_bytes=self.sent_bytes(config.shared),
            memory_bytes=sum(s.memory_bytes for s in steps),
            kernel_calls=sum(s.kernel_calls for s in steps),
        )

    def describe(self) -> dict[str, object]:
        return self.counter.describe()
