"""Datasets as tensors, the non-IID partition over devices, and the evaluation subset.

Text is tokenized once per (model, dataset, seq_len) to a fixed length (padding/truncation), so the cost
of a training step is a function of its configuration alone. The partition follows Hsu et al. 2019
("Measuring the effects of non-identical data distribution", arXiv 1909.06335): for every class, the
shares of its examples across devices are drawn from Dirichlet(alpha).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fleetsim.core.errors import InputError
from fleetsim.spec.scenario import PartitionSpec
from fleetsim.train import assets

__all__ = [
    "Split",
    "Task",
    "build_task",
    "column_partition",
    "dirichlet_partition",
    "iid_partition",
    "label_codes",
    "partition_problem",
    "partition_shards",
]


@dataclass(frozen=True)
class Split:
    """Tokenized examples: ``input_ids`` and ``attention_mask`` (N, T) int64; ``labels`` (N,) int64."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> Split:
        idx = torch.as_tensor(index, dtype=torch.long, device=self.labels.device)
        return Split(self.input_ids[idx], self.attention_mask[idx], self.labels[idx])

    def to(self, device: torch.device) -> Split:
        """These examples on ``device`` (``self`` when they are there already)."""
        if self.labels.device == device:
            return self
        return Split(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Task:
    """Everything about the data of a run: the train split, device shards and the evaluation subset."""

    train: Split
    test: Split  # the evaluation subset of the test split
    label_names: list[str]
    shards: list[np.ndarray]  # device index → indices into ``train``
    majority_accuracy: float  # accuracy of always predicting the test subset's most common class
    test_full: Split  # the whole test split
    local_tests: list[np.ndarray]  # device index → indices into ``test_full`` with the device's label mix

    def local_test(self, device: int) -> Split:
        """The device's local held-out examples (for personalized accuracy)."""
        return self.test_full.subset(self.local_tests[device])

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def _tokenize(tokenizer: Any, texts: list[str], labels: np.ndarray, seq_len: int) -> Split:
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")
    return Split(enc["input_ids"].long(), enc["attention_mask"].long(), torch.tensor(labels, dtype=torch.long))


def _cached_split(tokenizer: Any, key: str, texts: list[str], labels: np.ndarray, seq_len: int) -> Split:
    folder = assets.cache_dir() / "tokenized"
    path = folder / f"{key}.pt"
    if path.is_file():
        data = torch.load(path)
        return Split(data["input_ids"], data["attention_mask"], data["labels"])
    split = _tokenize(tokenizer, texts, labels, seq_len)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"input_ids": split.input_ids, "attention_mask": split.attention_mask, "labels": split.labels}, tmp)
    tmp.replace(path)
    return split


def dirichlet_partition(
    labels: np.ndarray,
    n_devices: int,
    alpha: float,
    min_samples: int,
    rng: np.random.Generator,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Split example indices over devices with per-class Dirichlet(alpha) shares.

    Redraws until every device holds at least ``min_samples`` examples; raises ``ValueError`` if that
    fails ``max_tries`` times (alpha too small or too many devices for the data).
    """
    classes = np.unique(labels)
    for _ in range(max_tries):
        shards: list[list[int]] = [[] for _ in range(n_devices)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(n_devices, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for device, part in enumerate(np.split(idx, cuts)):
                shards[device].extend(part.tolist())
        if min(len(s) for s in shards) >= min_samples:
            return [np.sort(np.asarray(s, dtype=np.int64)) for s in shards]
    raise ValueError(f"no Dirichlet(alpha={alpha}) partition gave every device >= {min_samples} examples")


def iid_partition(n_examples: int, n_devices: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and deal examples to devices in (almost) equal shares."""
    return [np.sort(part) for part in np.array_split(rng.permutation(n_examples), n_devices)]


def local_test_sets(
    train_labels: np.ndarray, test_labels: np.ndarray, shards: list[np.ndarray], size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per device, ``size`` test examples whose labels follow the device's training label mix."""
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    by_class = [np.flatnonzero(test_labels == c) for c in range(n_classes)]
    out = []
    for shard in shards:
        mix = np.bincount(train_labels[shard], minlength=n_classes).astype(float)
        mix[[len(ix) == 0 for ix in by_class]] = 0.0
        labels = rng.choice(n_classes, size=size, p=mix / mix.sum())
        picks = [rng.choice(by_class[c]) for c in labels]
        out.append(np.sort(np.asarray(picks, dtype=np.int64)))
    return out


def label_codes(train_labels: pd.Series) -> tuple[list[str], np.ndarray]:
    """The class names (sorted) and each training example's class index."""
    names = sorted(train_labels.unique().tolist())
    code = {name: i for i, name in enumerate(names)}
    return names, train_labels.map(code).to_numpy(np.int64)


def column_partition(users: np.ndarray, n_devices: int, min_samples: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Each device is one natural user: the examples sharing a value of ``users``. Users with at least
    ``min_samples`` examples are eligible, and ``n_devices`` of them are drawn (device i gets the i-th
    drawn); ``ValueError`` naming the counts when there are too few."""
    names, codes, counts = np.unique(users, return_inverse=True, return_counts=True)
    eligible = np.flatnonzero(counts >= min_samples)
    if len(eligible) < n_devices:
        raise ValueError(
            f"{len(eligible)} of the data's {len(names)} users have at least {min_samples} examples, "
            f"and the fleet has {n_devices} devices"
        )
    chosen = rng.permutation(eligible)[:n_devices]
    return [np.flatnonzero(codes == user) for user in chosen]


def partition_shards(
    labels: np.ndarray,
    n_devices: int,
    partition: PartitionSpec,
    rng: np.random.Generator,
    users: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Each device's training examples under ``partition`` (``ValueError`` when it cannot be drawn);
    ``users``: each example's user, for ``by_column``."""
    if partition.kind == "iid":
        return iid_partition(len(labels), n_devices, rng)
    if partition.kind == "by_column":
        if users is None:
            raise ValueError(f"the data has no column {partition.column!r}")
        return column_partition(users, n_devices, partition.min_samples_per_device, rng)
    return dirichlet_partition(labels, n_devices, partition.alpha, partition.min_samples_per_device, rng)


def partition_problem(
    labels: np.ndarray,
    n_devices: int,
    partition: PartitionSpec,
    rng: np.random.Generator,
    users: np.ndarray | None = None,
) -> tuple[str, str, object] | None:
    """Why ``partition`` cannot give ``n_devices`` devices their shards, as (scenario field, expected, got);
    None when it can. The same draw as the run's, given the same ``rng``."""
    n = len(labels)
    if partition.kind == "by_column":
        try:
            partition_shards(labels, n_devices, partition, rng, users)
        except ValueError as err:
            return "fleet", f"at most as many devices as eligible users ({err})", n_devices
        return None
    if partition.kind == "iid":
        if n < n_devices:
            return "fleet", f"at most {n} devices (the training split has {n} examples)", n_devices
        return None
    least = partition.min_samples_per_device
    if n < n_devices * least:
        share = f"{n_devices} devices share {n} training examples, {n / n_devices:.1f} each"
        return "dataset.partition.min_samples_per_device", f"at most {n // n_devices} ({share})", least
    try:
        partition_shards(labels, n_devices, partition, rng)
    except ValueError:
        expected = f"a larger alpha: Dirichlet({partition.alpha}) left some device below {least} examples in 1000 draws"
        return "dataset.partition.alpha", expected, partition.alpha
    return None


def _content_key(train: pd.DataFrame, test: pd.DataFrame) -> str:
    """A digest of the texts and labels of both splits (a user's file: its tokenized cache follows its rows)."""
    digest = hashlib.sha1()
    for frame in (train, test):
        digest.update(pd.util.hash_pandas_object(frame[["text", "label"]], index=False).to_numpy().tobytes())
    return digest.hexdigest()


def build_task(
    *,
    dataset_id: str,
    model_key: str,
    tokenizer: Any,
    seq_len: int,
    n_devices: int,
    partition: PartitionSpec,
    eval_max_examples: int | None,
    rng_partition: np.random.Generator,
    rng_eval: np.random.Generator,
    scenario_file: str | Path,
    local_test_examples: int = 32,
    frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> Task:
    """Load, tokenize (cached) and partition a dataset for ``n_devices`` devices: the catalogue's
    ``dataset_id``, or ``frames`` (train, test; columns text, label and, for ``by_column``, user)."""
    train_df, test_df = frames if frames is not None else assets.load_dataset_frames(dataset_id)
    names, y_train = label_codes(train_df.label)
    code = {name: i for i, name in enumerate(names)}
    test_df = test_df[test_df.label.isin(code)]
    y_test = test_df.label.map(code).to_numpy(np.int64)
    source = dataset_id if frames is None else _content_key(train_df, test_df)
    digest = hashlib.sha1(f"{model_key}|{source}|{seq_len}".encode()).hexdigest()[:16]
    train = _cached_split(tokenizer, f"{digest}-train", train_df.text.tolist(), y_train, seq_len)
    test_full = _cached_split(tokenizer, f"{digest}-test", test_df.text.tolist(), y_test, seq_len)
    test = test_full
    if eval_max_examples is not None and eval_max_examples < len(test):
        test = test.subset(np.sort(rng_eval.permutation(len(test))[:eval_max_examples]))
    users = train_df.user.to_numpy() if "user" in train_df else None
    try:
        shards = partition_shards(y_train, n_devices, partition, rng_partition, users)
    except ValueError as err:
        raise InputError(scenario_file, "dataset.partition", f"a feasible partition ({err})", partition.alpha) from None
    majority = float(np.bincount(test.labels.numpy(), minlength=len(names)).max() / len(test))
    local = local_test_sets(y_train, y_test, shards, local_test_examples, rng_eval)
    return Task(
        train=train,
        test=test,
        label_names=names,
        shards=shards,
        majority_accuracy=majority,
        test_full=test_full,
        local_tests=local,
    )
