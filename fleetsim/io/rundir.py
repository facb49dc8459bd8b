"""Run directories: a unique name for a new run, and writing every file of a finished run atomically.

Files are written into a temporary sibling folder (``<dir>.partial``) that is renamed into place at the
end, so a failed run leaves no half-written directory.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from fleetsim.io.recorder import Recorder

__all__ = ["new_run_dir", "write_run_dir"]


def new_run_dir(output_dir: Path, name: str) -> Path:
    """``<output_dir>/<name>-<YYYYmmdd-HHMMSS>``, with a ``-<n>`` suffix if that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = output_dir / f"{name}-{stamp}"
    n = 1
    while candidate.exists() or candidate.with_name(candidate.name + ".partial").exists():
        n += 1
        candidate = output_dir / f"{name}-{stamp}-{n}"
    return candidate


def write_run_dir(run_dir: Path, recorder: Recorder, summary: dict[str, Any], resolved: dict[str, Any]) -> Path:
    """Write everything into ``run_dir`` atomically (temporary sibling folder, then rename)."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = run_dir.with_name(run_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for name, frame in recorder.frames().items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        (tmp / "scenario.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
        tmp.rename(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)
