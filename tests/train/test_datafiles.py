"""Own data: a CSV with a user column partitioned by_column (each device one user); JSON Lines and a
Hugging Face save_to_disk folder read alike; a missing column names the columns there are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fleetsim.app.loading import load_scenario
from fleetsim.core.errors import InputError
from fleetsim.core.rng import Streams
from fleetsim.spec.scenario import DatasetSpec
from fleetsim.train.data import column_partition
from fleetsim.train.datafiles import dataset_frames

WORDS = {"pos": "good great fine lovely", "neg": "bad awful poor dull"}


def _reviews(n_users: int = 6, per_user: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        share = (u + 1) / (n_users + 1)  # each user's own label mix
        for i in range(per_user):
            label = "pos" if rng.random() < share else "neg"
            rows.append({"author": f"user{u}", "body": f"{WORDS[label]} review {i}", "stars": label})
    return pd.DataFrame(rows)


def test_a_local_csv_partitioned_by_its_user_column_gives_each_device_one_users_examples(write_scenario, run, tmp_path):
    data = _reviews()
    data.to_csv(tmp_path / "reviews.csv", index=False)
    dataset = {
        "id": None,
        "path": "reviews.csv",
        "text": "body",
        "label": "stars",
        "test_fraction": 0.25,
        "local_test_examples": 4,
        "partition": {"kind": "by_column", "column": "author", "min_samples_per_device": 8},
    }
    path = write_scenario({"dataset": dataset})
    result, frames = run(path)
    assert result.summary["dataset"] == "reviews.csv"
    train, test = load_scenario(path).dataset_frames()
    assert len(test) == round(0.25 * len(data)) and set(train.columns) == {"text", "label", "user"}
    shards = column_partition(train.user.to_numpy(), 4, 8, Streams(3).generator("partition"))
    assert all(train.user.iloc[shard].nunique() == 1 for shard in shards), "a device is one user"
    assert len({train.user.iloc[shard[0]] for shard in shards}) == 4, "four different users"
    updates = frames["updates"]
    assert updates.trained.any()
    for row in updates.itertuples():
        assert row.n_samples == len(shards[row.device_id])


def test_jsonl_and_a_save_to_disk_folder_read_like_the_csv(tmp_path):
    data = _reviews(3, 5)
    data.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    folder = tmp_path / "saved"
    folder.mkdir()
    table = pa.Table.from_pandas(data, preserve_index=False)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    for path in ("r.jsonl", "saved"):
        spec = DatasetSpec(path=path, text="body", label="stars", test_fraction=0.2)
        train, test = dataset_frames(spec, tmp_path, "s.yaml", np.random.default_rng(1))
        assert len(train) + len(test) == 15 and sorted(set(train.label) | set(test.label)) == ["neg", "pos"]


def test_a_missing_column_names_the_columns_there_are(tmp_path):
    _reviews(2, 3).to_csv(tmp_path / "r.csv", index=False)
    spec = DatasetSpec(path="r.csv", text="content")
    with pytest.raises(
        InputError, match=r"dataset.text: expected a column of r.csv \(author, body, stars\), got 'content'"
    ):
        dataset_frames(spec, tmp_path, "s.yaml", np.random.default_rng(0))
