"""Partitions of the training examples over devices."""

from __future__ import annotations

import numpy as np
import pytest

from fleetsim.train.data import dirichlet_partition, iid_partition


def test_dirichlet_partition_covers_every_example_once_with_minimum_size():
    labels = np.repeat(np.arange(4), 50)
    shards = dirichlet_partition(labels, 10, 0.5, 5, np.random.default_rng(0))
    joined = np.concatenate(shards)
    assert sorted(joined.tolist()) == list(range(200))
    assert min(len(s) for s in shards) >= 5


def test_small_alpha_is_more_skewed_than_large_alpha():
    labels = np.repeat(np.arange(4), 500)

    def skew(alpha: float) -> float:
        shards = dirichlet_partition(labels, 20, alpha, 1, np.random.default_rng(1))
        return float(np.mean([np.bincount(labels[s], minlength=4).max() / len(s) for s in shards]))

    assert skew(0.1) > skew(100.0) + 0.2


def test_infeasible_partition_raises():
    with pytest.raises(ValueError, match="no Dirichlet"):
        dirichlet_partition(np.zeros(10, dtype=int), 5, 0.5, 5, np.random.default_rng(0), max_tries=5)


def test_iid_partition_is_balanced():
    shards = iid_partition(103, 10, np.random.default_rng(0))
    assert sorted(len(s) for s in shards) == [10] * 7 + [11] * 3
