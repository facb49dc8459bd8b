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

    def __init__(
        self,
        file: str | Path,
        field: str,
        expected: str,
        got: Any = None,
        *,
        raw: bool = False,
        also: Sequence[InputError] = (),
    ):
        """``also``: further mistakes found in the same input, each reported on its own line."""
        self.file = str(file)
        self.field = field
        self.expected = expected
        self.got = got
        self.raw = raw
        self.also = list(also)
        super().__init__("\n".join(self.lines))

    @property
    def lines(self) -> list[str]:
        """One line per mistake: this one, then the others found with it."""
        return [self._line(), *(line for other in self.also for line in other.lines)]

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


def from_validation_error(
    file: str | Path, err: ValidationError, allowed: dict[str, list[str]], prefix: Sequence[int | str] = ()
) -> InputError:
    """Turn every pydantic error into an :class:`InputError` — the first, with the others in ``also`` (one per
    field path) — under the field path ``prefix``.

    ``allowed`` maps a dotted parent path (``""`` for the top level) to the keys accepted there, so an
    unknown key can list its alternatives.
    """
    found: dict[str, InputError] = {}
    for error in err.errors(include_url=False):
        one = _one_error(file, error, allowed, prefix)
        found.setdefault(one.field, one)  # a union's alternatives fail at one path: report it once
    first, *rest = found.values()
    return InputError(first.file, first.field, first.expected, first.got, raw=first.raw, also=rest)


def _one_error(file: str | Path, error: Any, allowed: dict[str, list[str]], prefix: Sequence[int | str]) -> InputError:
    """One pydantic error (a dict of ``loc``, ``type``, ``msg``, ``input``) as an :class:`InputError`."""
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    loc = [*prefix, *loc]
    allowed = {format_path([*prefix, *_strip_path(k)]) if prefix else k: v for k, v in allowed.items()}
    path = format_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = format_path(loc[:-1])
        keys = allowed.get(_strip_indices(parent), [])
        hint = f"one of the known keys ({', '.join(keys)})" if keys else "a known key"
        return InputError(file, path, hint, loc[-1] if loc else None)
    if kind == "missing":
        return InputError(file, path, "a value (this field is required)", "nothing")
    ctx = error.get("ctx") or {}
    if kind == "union_tag_invalid":  # the tag names the variant: report the tag, not the whole mapping
        return InputError(file, path, f"a variant among {ctx.get('expected_tags')}", ctx.get("tag"))
    if kind in _PLAIN:
        return InputError(file, path, _PLAIN[kind].format(**ctx), error.get("input"))
    msg = error["msg"]
    for lead in ("Input should be ", "Value error, "):
        if msg.startswith(lead):
            msg = msg[len(lead) :]
    msg = msg.split(", unable to parse")[0]
    return InputError(file, path, msg, error.get("input"))


_PLAIN = {  # pydantic error types whose stock message reads badly after "expected"
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
    "string_pattern_mismatch": "text matching {pattern}",
    "union_tag_not_found": "a mapping with a {discriminator} key",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "int_from_float": "a whole number",
}


def _strip_path(path: str) -> list[str]:
    return path.split(".") if path else []


def _strip_indices(path: str) -> str:
    import re

    return re.sub(r"\[\d+\]", "", path)
