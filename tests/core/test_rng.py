"""Random streams depend only on (seed, name, ids); a generator's state round-trips as plain integers."""

from __future__ import annotations

import numpy as np

from fleetsim.core.rng import Streams, generator_state, set_generator_state


def test_streams_depend_only_on_seed_name_and_ids():
    a, b = Streams(5), Streams(5)
    assert a.generator("x", 1, 2).random() == b.generator("x", 1, 2).random()
    assert a.generator("x", 1, 2).random() != a.generator("x", 2, 1).random()
    assert a.generator("x").random() != a.generator("y").random()
    assert a.integer_seed("t", 3) == b.integer_seed("t", 3) != Streams(6).integer_seed("t", 3)


def test_generator_state_round_trips_as_uint64_words():
    rng = Streams(1).generator("policy")
    rng.random(7)
    rng.integers(0, 10, size=3, dtype=np.uint32)  # leaves a buffered 32-bit half
    saved = generator_state(rng)
    assert saved.dtype == np.uint64 and saved.shape == (6,)
    expected = rng.random(5)
    twin = np.random.default_rng(0)
    set_generator_state(twin, saved)
    assert np.array_equal(twin.random(5), expected)
