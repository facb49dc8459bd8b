"""One scenario seed → every random stream.

Each component asks for a stream by name plus integer ids (round, device, ...). The stream is a fresh
``numpy.random.Generator`` built from ``SeedSequence([seed, crc32(name), *ids])``, so it depends only on
the seed and the ids, never on the order in which components ask. That keeps runs reproducible when the
set of selected devices or the order of events changes, and makes resuming at a round boundary trivial.

A component that keeps one generator across rounds (a bandit policy) saves it with
:func:`generator_state` (plain unsigned integers) and restores it with :func:`set_generator_state`.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Streams", "generator_state", "set_generator_state"]

_WORD = (1 << 64) - 1


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


def generator_state(rng: np.random.Generator) -> np.ndarray:
    """The state of a PCG64 generator as six uint64 words: state (2), increment (2), has_uint32, uinteger."""
    bits = rng.bit_generator.state
    if bits["bit_generator"] != "PCG64":
        raise ValueError(f"only PCG64 generators can be saved, got {bits['bit_generator']}")
    state, inc = bits["state"]["state"], bits["state"]["inc"]
    words = [state >> 64, state & _WORD, inc >> 64, inc & _WORD, bits["has_uint32"], bits["uinteger"]]
    return np.array(words, dtype=np.uint64)


def set_generator_state(rng: np.random.Generator, words: np.ndarray) -> None:
    """Restore a state saved by :func:`generator_state` into ``rng`` (a PCG64 generator)."""
    w = [int(x) for x in words]
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
