"""Reading a JSON object that fleetsim wrote (a run's summary, a study's record), where a damaged file is the
user's problem to hear about, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleetsim.core.errors import InputError


def read_json_object(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object in ``path``, with at least the keys ``required``.

    Raises :class:`InputError` naming the file when it cannot be read as UTF-8 JSON, holds something other
    than an object, or lacks a required key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, "", "a readable JSON file written by fleetsim", f"{type(err).__name__}: {err}") from None
    if not isinstance(data, dict):
        raise InputError(path, "", "a JSON object written by fleetsim", type(data).__name__)
    missing = [key for key in required if key not in data]
    if missing:
        raise InputError(path, missing[0], "a JSON object written by fleetsim, with this key", "nothing")
    return data
