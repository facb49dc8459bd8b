"""Registries: every mode (strategy, schedule, bandit policy, reward, optimizer, executor) is an object
registered under its name, so the name is looked up in one place instead of branched on in many.

A registry is a read-only mapping from name to entry; ``check`` is a pydantic validator that accepts only
registered names, so a typo in a scenario is an error at load time that lists the alternatives. A registry
with an entry-point group also finds plug-ins from the user's own packages: a name registered in that group
(``[project.entry-points."fleetsim.strategies"]``) or a ``module:attribute`` path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, Protocol, TypeVar, cast

__all__ = ["Named", "Registry"]


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Mapping[str, T], Generic[T]):
    """Entries by name, in registration order. ``kind`` names what is registered, for messages."""

    def __init__(self, kind: str, group: str | None = None, accepts: Callable[[Any], bool] | None = None) -> None:
        """``group``: the entry-point group plug-ins register in (e.g. ``fleetsim.strategies``); with it, a name
        that is not registered is looked up there, or imported when it is ``module:attribute``; ``accepts``
        says whether a loaded object is a valid entry."""
        self.kind = kind
        self.group = group
        self.accepts = accepts
        self._entries: dict[str, T] = {}
        self._plugins: dict[str, T] = {}  # plug-ins loaded by name: found by lookup, not listed with the built-ins

    def register(self, entry: T) -> T:
        """Register ``entry`` under ``entry.name`` (usable as a class decorator); a name is taken once."""
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name]
        if name not in self._plugins and self.group is not None:
            plugin = self.plugin(name)
            if plugin is not None:
                self._plugins[name] = plugin
        try:
            return self._plugins[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {self.known()}") from None

    def plugin(self, name: str) -> T | None:
        """The plug-in called ``name``: ``module:attribute`` imported, or an entry point of this registry's
        group; None if there is none. Raises ``ValueError`` (saying why) for one that cannot be loaded or
        is not a valid entry."""
        found: Any = None
        try:
            if ":" in name:
                module, attribute = name.split(":", 1)
                found = getattr(importlib.import_module(module), attribute)
            else:
                points = [ep for ep in entry_points(group=self.group or "") if ep.name == name]
                if not points:
                    return None
                found = points[0].load()
        except (ImportError, AttributeError, ValueError) as err:
            raise ValueError(f"an importable {self.kind} plug-in ({type(err).__name__}: {err})") from None
        if self.accepts is not None and not self.accepts(found):
            raise ValueError(f"a {self.kind} plug-in of the right type (got {found!r})")
        return cast(T, found)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def known(self) -> str:
        """The registered names, sorted and comma-separated."""
        return ", ".join(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self[name]
        except (KeyError, ValueError):
            return False
        return True

    def check(self, name: str) -> str:
        """``name`` if registered, else ``ValueError("one of ...")`` (a pydantic ``AfterValidator``)."""
        if name not in self:
            raise ValueError(f"one of {self.known()}")
        return name
