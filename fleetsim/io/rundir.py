"""Run directories: reserved when a run starts, always consistent, complete when ``summary.json`` says so.

Layout of ``<output_dir>/<name>-<YYYYmmdd-HHMMSS>[-n]/``:

* ``summary.json`` — ``status`` is ``running`` while the run goes on, ``interrupted`` when it stopped early
  (with how to resume), ``complete`` with every headline number when it finished;
* ``scenario.resolved.yaml`` — the scenario as it runs, every default filled in;
* ``parts/NNNNN.json`` — the rows each round added to each table, one file per committed round;
* ``checkpoint-NNNNN/`` and ``checkpoint.json`` — the state to resume from, at the last committed round;
* ``resume/`` — what ``fleetsim run --resume`` needs to rebuild the run (the raw scenario, the profiles);
* ``<table>.parquet`` — every table, written when the run completes (the parts are then removed).

Every file is written next to its place and renamed into it, so a reader (or a resumed run) never sees a
half-written one; the directory itself is created with one ``mkdir``, so runs started together never share
one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fleetsim.core.jsonfile import read_json_object
from fleetsim.core.state import StateDict
from fleetsim.io.checkpoint import load_tree, save_tree

__all__ = ["RunDir", "json_text", "reserve_run_dir"]


def reserve_run_dir(output_dir: Path, name: str) -> Path:
    """Create and return ``<output_dir>/<name>-<YYYYmmdd-HHMMSS>``, with a ``-<n>`` suffix if that is taken
    (also by a run that started in the same second, in another process)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        candidate = output_dir / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free run directory name for {name}-{stamp} in {output_dir}")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def json_text(value: Any) -> str:
    """JSON of rows and summaries; numpy scalars as numbers; NaN stays NaN (read back exactly)."""
    return json.dumps(value, default=_json_default)


def _summary_json(value: Any) -> Any:
    """NaN → null for summary.json (strict JSON for other tools)."""
    if isinstance(value, dict):
        return {k: _summary_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_summary_json(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDir:
    """One run's directory (see the module docstring for its layout)."""

    def __init__(self, path: Path):
        self.path = path

    # ----------------------------------------------------------------------------------- status, summary

    def status(self) -> str | None:
        """``running``, ``interrupted`` or ``complete`` (None: no summary yet)."""
        summary = self.summary()
        return None if summary is None else str(summary.get("status"))

    def summary(self) -> dict[str, Any] | None:
        path = self.path / "summary.json"
        return read_json_object(path) if path.is_file() else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_atomic(
            self.path / "summary.json", json.dumps(_summary_json(summary), indent=2, default=_json_default) + "\n"
        )

    # ------------------------------------------------------------------------------------- the scenario

    def write_scenario(
        self, resolved: dict[str, Any], raw: dict[str, Any], scenario_file: str, profiles: dict[str, Any]
    ) -> None:
        """The resolved scenario for readers; the raw tree, its file and the profiles it used, to resume."""
        import yaml

        _write_atomic(self.path / "scenario.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False))
        (self.path / "resume").mkdir(exist_ok=True)
        _write_atomic(self.path / "resume" / "scenario.json", json.dumps({"file": scenario_file, "raw": raw}))
        _write_atomic(self.path / "resume" / "profiles.json", json.dumps(profiles))

    def read_scenario(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(scenario file, raw tree, profiles) as written by :meth:`write_scenario`."""
        scenario = json.loads((self.path / "resume" / "scenario.json").read_text())
        profiles = json.loads((self.path / "resume" / "profiles.json").read_text())
        return scenario["file"], scenario["raw"], profiles

    # ------------------------------------------------------------------------------------- parts, rows

    def _part(self, index: int) -> Path:
        return self.path / "parts" / f"{index:05d}.json"

    def write_part(self, index: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Commit the rows one round added to each table."""
        (self.path / "parts").mkdir(exist_ok=True)
        _write_atomic(self._part(index), json_text(rows))

    def read_parts(self, count: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """The rows of the first ``count`` parts (default: all there are), concatenated per table."""
        out: dict[str, list[dict[str, Any]]] = {}
        index = 0
        while (count is None or index < count) and self._part(index).is_file():
            for name, rows in json.loads(self._part(index).read_text()).items():
                out.setdefault(name, []).extend(rows)
            index += 1
        return out

    def drop_parts_from(self, index: int) -> None:
        """Remove parts ``index`` and later (written after the checkpoint a run resumes from)."""
        while self._part(index).is_file():
            self._part(index).unlink()
            index += 1

    # ---------------------------------------------------------------------------------------- checkpoint

    def write_checkpoint(self, state: StateDict, meta: dict[str, Any]) -> None:
        """Save ``state`` as the checkpoint to resume from; ``meta`` (e.g. parts committed) goes with it."""
        index = int(meta["parts"])
        folder = save_tree(self.path / f"checkpoint-{index:05d}", state)
        _write_atomic(self.path / "checkpoint.json", json.dumps({**meta, "folder": folder.name}))
        for old in self.path.glob("checkpoint-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)

    def read_checkpoint(self) -> tuple[StateDict, dict[str, Any]] | None:
        """(state, meta) of the last checkpoint, or None when the run has none yet."""
        pointer = self.path / "checkpoint.json"
        if not pointer.is_file():
            return None
        meta = json.loads(pointer.read_text())
        return load_tree(self.path / meta["folder"]), meta

    # ------------------------------------------------------------------------------------------- finish

    def write_tables(self, frames: dict[str, pd.DataFrame]) -> None:
        """Write every table as parquet, then drop what only a resume needed."""
        for name, frame in frames.items():
            tmp = self.path / f"{name}.parquet.tmp"
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.path / f"{name}.parquet")

    def clean_up(self) -> None:
        """Remove the parts, checkpoints and resume files of a complete run."""
        for folder in ("parts", "resume", *(p.name for p in self.path.glob("checkpoint-*"))):
            shutil.rmtree(self.path / folder, ignore_errors=True)
        (self.path / "checkpoint.json").unlink(missing_ok=True)
