"""Registries: every mode (strategy, schedule, bandit policy, reward, optimizer, executor) is an object
registered under its name, so the name is looked up in one place instead of branched on in many.

A registry is a read-only mapping from name to entry; ``check`` is a pydantic validator that accepts only
registered names, so a typo in a scenario is an error at load time that lists the alternatives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, Protocol, TypeVar

__all__ = ["Named", "Registry"]


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Mapping[str, T], Generic[T]):
    """Entries by name, in registration order. ``kind`` names what is registered, for messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Register ``entry`` under ``entry.name`` (usable as a class decorator); a name is taken once."""
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {self.known()}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def known(self) -> str:
        """The registered names, sorted and comma-separated."""
        return ", ".join(sorted(self._entries))

    def check(self, name: str) -> str:
        """``name`` if registered, else ``ValueError("one of ...")`` (a pydantic ``AfterValidator``)."""
        if name not in self._entries:
            raise ValueError(f"one of {self.known()}")
        return name
