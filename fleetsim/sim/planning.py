"""Planning an update fully before it runs: which blocks run in each step, its seed, its probe examples.

Everything random about an update comes from streams keyed by (round, device), so the plan — and with it
the update's cost — is known before the simulation decides whether the update arrives, and a lost update
is never trained.
"""

from __future__ import annotations

import numpy as np

from fleetsim.core.rng import Streams
from fleetsim.core.schedules import sample_mask
from fleetsim.core.updates import TrainConfig, UpdatePlan

__all__ = ["plan_update"]


def plan_update(
    round_idx: int, device_id: int, config: TrainConfig, shard: np.ndarray, n_blocks: int, streams: Streams
) -> UpdatePlan:
    """The update of ``device_id`` in ``round_idx`` under ``config``, on its ``shard`` of a ``n_blocks`` model."""
    mask = sample_mask(
        config.dropout, n_blocks, config.local_steps, round_idx, streams.generator("layers", round_idx, device_id)
    )
    seed = streams.integer_seed("train", round_idx, device_id)
    n_probe = min(config.probe_examples, len(shard))
    probe = None
    if n_probe > 0:  # a fixed set of the device's examples, scored at full depth before and after
        probe = np.sort(streams.generator("probe", device_id).permutation(shard)[:n_probe])
    return UpdatePlan(round_idx, device_id, config, seed, shard, mask, probe)
