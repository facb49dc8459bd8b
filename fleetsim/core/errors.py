"""User-facing input errors: one line naming the file, the field path, the expectation and the value.

A bad scenario, profile or asset request raises :class:`InputError`. The CLI prints ``str(error)`` and
exits with code 2; it never shows a traceback for these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

__all__ = ["InputError", "WorkerLost", "format_path", "from_validation_error"]

_MAX_VALUE_CHARS = 80


class InputError(Exception):
    """A mistake in user input, reported as ``FILE: FIELD: expected X, got Y``.

    Parameters
    ----------
    file : the file the mistake is in (or a command-line argument name).
    field : dotted field path such as ``fleet[2].count``; empty for whole-file problems.
    expected : what would have been accepted.
    got : the value received (quoted with ``repr``, shortened).
    """

    def __init__(self, file: str | Path, field: str, expected: str, got: Any = None, *, raw: bool = False):
        self.file = str(file)
        self.field = field
        self.expected = expected
        self.got = got
        self.raw = raw
        super().__init__(self._line())

    def _line(self) -> str:
        where = f"{self.file}: {self.field}: " if self.field else f"{self.file}: "
        if self.raw:
            return where + self.expected
        return f"{where}expected {self.expected}, got {_short(self.got)}"


class WorkerLost(RuntimeError):
    """A worker (process or Ray actor) that was training an update died or failed; the message names the
    update. Not a user mistake: the run stops with its last committed round and can be resumed."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def format_path(loc: Sequence[int | str]) -> str:
    """``("fleet", 2, "count")`` → ``fleet[2].count``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def from_validation_error(file: str | Path, err: ValidationError, allowed: dict[str, list[str]]) -> InputError:
    """Turn the first pydantic error into an :class:`InputError`.

    ``allowed`` maps a dotted parent path (``""`` for the top level) to the keys accepted there, so an
    unknown key can list its alternatives.
    """
    first = err.errors(include_url=False)[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    path = format_path(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = format_path(loc[:-1])
        keys = allowed.get(_strip_indices(parent), [])
        hint = f"one of the known keys ({', '.join(keys)})" if keys else "a known key"
        return InputError(file, path, hint, loc[-1] if loc else None)
    if kind == "missing":
        return InputError(file, path, "a value (this field is required)", "nothing")
    msg = first["msg"]
    for prefix in ("Input should be ", "Value error, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    msg = msg.split(", unable to parse")[0]
    return InputError(file, path, msg, first.get("input"))


def _strip_indices(path: str) -> str:
    import re

    return re.sub(r"\[\d+\]", "", path)
