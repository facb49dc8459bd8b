"""One scenario seed → every random stream.

Each component asks for a stream by name plus integer ids (round, device, ...). The stream is a fresh
``numpy.random.Generator`` built from ``SeedSequence([seed, crc32(name), *ids])``, so it depends only on
the seed and the ids, never on the order in which components ask. That keeps runs reproducible when the
set of selected devices or the order of events changes, and makes resuming at a round boundary trivial.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Streams"]


class Streams:
    """Factory of named, independent random streams derived from one seed."""

    def __init__(self, seed: int):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = seed

    def _sequence(self, name: str, ids: tuple[int, ...]) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, zlib.crc32(name.encode()), *ids])

    def generator(self, name: str, *ids: int) -> np.random.Generator:
        """A numpy Generator for ``name`` and ``ids``; the same arguments always give the same stream."""
        return np.random.default_rng(self._sequence(name, ids))

    def integer_seed(self, name: str, *ids: int) -> int:
        """A 63-bit integer seed (for ``torch.manual_seed``) for ``name`` and ``ids``."""
        state = self._sequence(name, ids).generate_state(2, dtype=np.uint32)
        return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)
