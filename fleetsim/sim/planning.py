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
    round_idx: int,
    device_id: int,
    config: TrainConfig,
    shard: np.ndarray,
    n_blocks: int,
    streams: Streams,
    serial: int | None = None,
) -> UpdatePlan:
    """The update of ``device_id`` in ``round_idx`` under ``config``, on its ``shard`` of a ``n_blocks`` model.

    ``serial`` (asynchronous rounds, where a device may train twice from one global version) is added to
    the keys of the update's streams."""
    ids = (round_idx, device_id) if serial is None else (round_idx, device_id, serial)
    mask = sample_mask(config.dropout, n_blocks, config.local_steps, round_idx, streams.generator("layers", *ids))
    seed = streams.integer_seed("train", *ids)
    n_probe = min(config.probe_examples, len(shard))
    probe = None
    if n_probe > 0:  # a fixed set of the device's examples, scored at full depth before and after
        probe = np.sort(streams.generator("probe", device_id).permutation(shard)[:n_probe])
    return UpdatePlan(round_idx, device_id, config, seed, shard, mask, probe)
