"""Planning an update fully before it runs: which blocks run in each step, its seed, its probe examples.

Everything random about an update comes from streams keyed by (round, device), so the plan — and with it
the update's cost — is known before the simulation decides whether the update arrives, and a lost update
is never trained.
"""

from __future__ import annotations

import functools

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
    trains: bool = True,
) -> UpdatePlan:
    """The update of ``device_id`` in ``round_idx`` under ``config``, on its ``shard`` of a ``n_blocks`` model.

    ``serial`` (asynchronous rounds, where a device may train twice from one global version) is added to
    the keys of the update's streams. An update that will not be trained (systems mode, ``trains`` false)
    gets seed 0 and no probe examples: nothing else about it changes."""
    ids = (round_idx, device_id) if serial is None else (round_idx, device_id, serial)
    counts: tuple[int, ...] = ()  # blocks per step (worked out from the mask unless every block runs)
    if config.dropout.ratio == 0.0:  # every block runs: nothing to draw
        mask, counts = _full_mask(config.local_steps, n_blocks), (n_blocks,) * config.local_steps
    else:
        layers = streams.generator("layers", *ids)
        mask = sample_mask(config.dropout, n_blocks, config.local_steps, round_idx, layers)
    seed = streams.integer_seed("train", *ids) if trains else 0
    n_probe = min(config.probe_examples, len(shard))
    probe = None
    if n_probe > 0 and trains:  # a fixed set of the device's examples, scored at full depth before and after
        probe = np.sort(streams.generator("probe", device_id).permutation(shard)[:n_probe])
    return UpdatePlan(round_idx, device_id, config, seed, shard, mask, probe, counts)


@functools.cache
def _full_mask(steps: int, n_blocks: int) -> np.ndarray:
    """Every block in every step, one read-only array shared by every plan of that shape."""
    mask = np.ones((steps, n_blocks), dtype=bool)
    mask.flags.writeable = False
    return mask
