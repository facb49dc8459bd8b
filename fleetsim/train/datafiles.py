"""A dataset's train and test frames: a fetched catalogue dataset, or the user's own file.

Own files are CSV, Parquet, JSON Lines, or a Hugging Face ``save_to_disk`` folder (its Arrow files, read with
pyarrow: the ``datasets`` package is not needed). The frames get the columns ``text`` and ``label`` (as
strings) and, for a ``by_column`` partition, ``user``. Without a test file, ``test_fraction`` of the rows are
held out by a seeded permutation. Every mistake (a missing file or column) is an :class:`InputError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from fleetsim.core.errors import InputError
from fleetsim.spec.scenario import DatasetSpec
from fleetsim.train import assets

__all__ = ["dataset_frames", "read_table"]

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def _format(path: Path, given: str | None, file: str | Path) -> str:
    if given is not None:
        return given
    if path.is_dir():
        return "hf_disk"
    if path.suffix.lower() in SUFFIXES:
        return SUFFIXES[path.suffix.lower()]
    known = ", ".join(sorted(SUFFIXES))
    raise InputError(
        file, "dataset.format", f"csv, parquet, jsonl or hf_disk (the suffix {path.suffix!r} is not {known})", None
    )


def _arrow_folder(folder: Path) -> pd.DataFrame:
    """A ``Dataset.save_to_disk`` folder: its ``data-*.arrow`` files (Arrow IPC streams) concatenated."""
    tables = []
    for arrow in sorted(folder.glob("*.arrow")):
        with pa.memory_map(str(arrow)) as source:
            try:
                tables.append(pa.ipc.open_stream(source).read_all())
            except pa.ArrowInvalid:
                tables.append(pa.ipc.open_file(source).read_all())
    if not tables:
        raise FileNotFoundError(f"no .arrow files in {folder}")
    return pa.concat_tables(tables).to_pandas()


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    """Read one table file (or ``save_to_disk`` folder; for a ``DatasetDict``, its ``train`` split)."""
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    if (path / "dataset_dict.json").is_file():
        return _arrow_folder(path / "train")
    return _arrow_folder(path)


def _read(spec: DatasetSpec, name: str, base_dir: Path, file: str | Path, field: str) -> pd.DataFrame:
    path = base_dir / name
    if not path.exists():
        raise InputError(file, field, f"an existing file or folder (relative to {base_dir})", name)
    fmt = _format(path, spec.format, file)
    try:
        return read_table(path, fmt)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise InputError(file, field, f"a readable {fmt} table ({type(err).__name__}: {err})", name) from None


def _columns(frame: pd.DataFrame, spec: DatasetSpec, file: str | Path, what: str, label_optional: bool) -> pd.DataFrame:
    """``frame`` with the scenario's columns renamed to ``text``, ``label`` (strings) and ``user``;
    ``label_optional``: without the label column every row is labelled ``text`` (one class)."""
    wanted = {"text": spec.text, "label": spec.label}
    if label_optional and spec.label not in frame.columns:
        frame = frame.assign(**{spec.label: "text"})
    if spec.partition.column is not None:
        wanted["user"] = spec.partition.column
    field = {"text": "dataset.text", "label": "dataset.label", "user": "dataset.partition.column"}
    for role, column in wanted.items():
        if column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise InputError(file, field[role], f"a column of {what} ({columns})", column)
    out = pd.DataFrame({role: frame[column] for role, column in wanted.items()})
    out["text"], out["label"] = out.text.astype(str), out.label.astype(str)
    return out.reset_index(drop=True)


def dataset_frames(
    spec: DatasetSpec, base_dir: Path, file: str | Path, rng: np.random.Generator, label_optional: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) frames of the scenario's dataset; ``rng`` draws the held-out rows of a file without a
    test file (the same draw for the same seed); ``label_optional`` (a language model's text): a file may
    have no label column."""
    if spec.id is not None:
        train, test = assets.load_dataset_frames(spec.id)
        if spec.partition.column is not None:
            raise InputError(
                file, "dataset.partition.column", "a column of the dataset (text, label)", spec.partition.column
            )
        return train, test
    assert spec.path is not None
    rows = _columns(_read(spec, spec.path, base_dir, file, "dataset.path"), spec, file, spec.path, label_optional)
    if spec.test_path is not None:
        test_frame = _read(spec, spec.test_path, base_dir, file, "dataset.test_path")
        test = _columns(test_frame, spec, file, spec.test_path, label_optional)
        return rows, test
    order = rng.permutation(len(rows))
    n_test = max(1, round(spec.test_fraction * len(rows)))
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    return rows.iloc[train_rows].reset_index(drop=True), rows.iloc[test_rows].reset_index(drop=True)
