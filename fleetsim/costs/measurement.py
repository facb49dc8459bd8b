"""Measuring configurations of one model on this machine: counted work, timed steps, profiled time split.

:func:`measure_configs` goes round the configurations ``repeats`` times; in each round it times every
configuration (:func:`~fleetsim.costs.step_timer.time_steps`) and, if asked, profiles a few more of its
steps (:func:`~fleetsim.costs.op_profile.profile_split`), so that slow spells of the machine (other
processes, a busy host under a virtual machine) fall on one round of several configurations rather than on
every round of one, and timing and profiling of a configuration see the same spells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleetsim.costs.cost_model import CostModel
from fleetsim.costs.counting import StepCost
from fleetsim.costs.host_meter import loadavg
from fleetsim.costs.model_counter import ModelCounter
from fleetsim.costs.op_profile import TimeSplit, dispatch_overhead_samples, profile_split
from fleetsim.costs.step_timer import StepConfig, StepTiming, lower_quartile, time_steps
from fleetsim.spec.scenario import LoraSpec, PartitionSpec
from fleetsim.train import assets
from fleetsim.train.data import Split, build_task, label_codes
from fleetsim.train.models import ModelBundle, load_model, max_positions

__all__ = ["Measured", "load_for_calibration", "lower_quartile", "measure_configs", "merge_rounds"]


@dataclass(frozen=True)
class Measured:
    """A configuration's counted work per step, its timings and profiled splits (one of each per round)."""

    config: StepConfig
    cost: StepCost
    timings: tuple[StepTiming, ...]
    splits: tuple[TimeSplit, ...] = ()
    overheads_s: tuple[float, ...] = ()  # host seconds per operation, timed beside each profiled round

    @property
    def clean_s(self) -> list[float]:
        return [t for timing in self.timings for t in timing.clean_s]

    @property
    def contended(self) -> bool:
        """Fewer than 3 clean steps: other load spoiled the measurement."""
        return len(self.clean_s) < 3

    @property
    def step_s(self) -> float:
        """The machine's unimpeded step time: the lower quartile of the clean steps (slow spells of the host
        make steps slower, never faster); when contended, the smallest of the rounds' medians."""
        if self.contended:
            return min(t.median_s for t in self.timings)
        return lower_quartile(self.clean_s)

    @property
    def split(self) -> TimeSplit:
        """The profiled round that ran fastest (by the same argument)."""
        if not self.splits:
            raise ValueError(f"{self.config.label} was not profiled")
        return min(self.splits, key=lambda s: s.wall_s)

    @property
    def peak_memory_bytes(self) -> int:
        """Largest resident high-water mark of the rounds."""
        return max(t.rss_peak_bytes for t in self.timings)


def measure_configs(
    bundle: ModelBundle,
    data: Split,
    cost_model: CostModel,
    configs: list[StepConfig],
    *,
    repeats: int,
    steps: int,
    warmup: int = 2,
    patience_s: float = 0.0,
    profile_steps: int = 0,
    first_round: int = 0,
    log: Callable[[str], None] = lambda line: None,
) -> list[Measured]:
    """Count each configuration's step with ``cost_model``; time ``steps`` clean steps of it (``patience_s``
    to wait out other load) and profile ``profile_steps`` more, then time the per-operation overhead
    (:func:`~fleetsim.costs.op_profile.dispatch_overhead_samples`) so it meets the same slow spells, in each
    of ``repeats`` rounds (numbered from ``first_round``: a round's number seeds its batches and blocks)."""
    costs = [cost_model.step(c.batch_size, c.seq_len, c.n_active) for c in configs]
    timings: list[list[StepTiming]] = [[] for _ in configs]
    splits: list[list[TimeSplit]] = [[] for _ in configs]
    overheads: list[list[float]] = [[] for _ in configs]
    for r in range(first_round, first_round + repeats):
        for i, c in enumerate(configs):
            t = time_steps(
                bundle,
                data,
                batch_size=c.batch_size,
                seq_len=c.seq_len,
                n_active=c.n_active,
                steps=steps,
                warmup=warmup,
                seed=r,
                patience_s=patience_s,
            )
            timings[i].append(t)
            line = f"round {r + 1} {c.label}: median {t.median_s:.4f} s/step, "
            line += f"{len(t.clean_s)}/{len(t.step_s)} steps clean"
            if profile_steps:
                sp = profile_split(bundle, data, c, steps=profile_steps, warmup=1, patience_s=patience_s)
                splits[i].append(sp)
                overheads[i].extend(dispatch_overhead_samples())
                line += f"; profiled {sp.matmul_s:.4f} s matmul + {sp.memory_s:.4f} s other of {sp.wall_s:.4f} s"
            log(f"{line}, load {loadavg()}")
    return [
        Measured(c, cost, tuple(ts), tuple(sp), tuple(oh))
        for c, cost, ts, sp, oh in zip(configs, costs, timings, splits, overheads, strict=True)
    ]


def merge_rounds(earlier: list[Measured], later: list[Measured]) -> list[Measured]:
    """The same configurations' rounds of two measurements together (``earlier`` may be empty)."""
    if not earlier:
        return later
    return [
        Measured(a.config, a.cost, a.timings + b.timings, a.splits + b.splits, a.overheads_s + b.overheads_s)
        for a, b in zip(earlier, later, strict=True)
    ]


def load_for_calibration(
    model_id: str, dataset_id: str, seq_len: int
) -> tuple[ModelBundle, Split, CostModel, int | None]:
    """The model (LoRA r=8, α=16, as a scenario's default; offline, from the asset cache or a local
    directory), its tokenized training split at up to ``seq_len`` tokens (capped by the model's positions), a
    cost model counting its steps, and that cap."""
    path = str(assets.model_dir(model_id)) if model_id in assets.MODELS else model_id
    cap = max_positions(path)
    labels, _ = label_codes(assets.load_dataset_frames(dataset_id)[0].label)
    bundle = load_model(path, len(labels), LoraSpec(), init_seed=0)
    task = build_task(
        dataset_id=dataset_id,
        model_key=f"calibrate-{model_id}",
        tokenizer=bundle.tokenizer,
        seq_len=seq_len if cap is None else min(seq_len, cap),
        n_devices=1,
        partition=PartitionSpec(kind="iid"),
        eval_max_examples=8,
        rng_partition=np.random.default_rng(0),
        rng_eval=np.random.default_rng(0),
        scenario_file="calibrate",
    )
    cost_model = CostModel(ModelCounter(bundle, task.train, f"calibrate-{model_id}"), bundle.num_blocks)
    return bundle, task.train, cost_model, cap
