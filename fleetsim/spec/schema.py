"""Shared pieces of the YAML schemas: a strict frozen base model and YAML/pydantic loading helpers."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fleetsim.core.errors import InputError, from_validation_error

__all__ = ["Strict", "allowed_keys", "read_yaml_mapping", "validate"]

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every schema node: unknown keys are errors, numbers are finite, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; every failure is an :class:`InputError`."""
    if not path.is_file():
        raise InputError(path, "", "file not found (expected an existing YAML file)", raw=True)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(path, f"byte {err.start}", "UTF-8 text", err.object[err.start : err.start + 1]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(path, where, f"valid YAML ({problem})", None, raw=True) from None
    if not isinstance(data, dict):
        raise InputError(path, "", "a YAML mapping at the top level", type(data).__name__)
    return data


def allowed_keys(model: type[BaseModel], prefix: str = "") -> dict[str, list[str]]:
    """Map each dotted path of ``model``'s tree (lists flattened) to the keys accepted there."""
    out = {prefix: list(model.model_fields)}
    for name, field in model.model_fields.items():
        for sub in _models_in(field.annotation):
            child = f"{prefix}.{name}" if prefix else name
            for key, keys in allowed_keys(sub, child).items():
                out.setdefault(key, []).extend(k for k in keys if k not in out.get(key, []))
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (list, tuple, typing.Union, types.UnionType) or origin is not None:
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
        return found
    return []


def validate(model: type[M], data: Any, file: str | Path, prefix: tuple[str | int, ...] = ()) -> M:
    """``model.model_validate(data)`` with its errors turned into an :class:`InputError` (one line each),
    field paths under ``prefix``."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise from_validation_error(file, err, allowed_keys(model), prefix) from None
