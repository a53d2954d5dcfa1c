"""A small name → object registry shared by backbones, strategies, tasks and scores."""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import warnings
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Entry(Generic[T]):
    """One registered object with its one-line description and free-form metadata.

    A declared entry holds only the `"package.module:attribute"` its object is imported from; the
    import happens on first access of `obj`, so listing names, descriptions and metadata stays light
    (no torch, Lightning or transformers at CLI start-up).
    """

    __slots__ = ("name", "description", "meta", "_obj", "_target")

    def __init__(self, name: str, obj: T | None = None, description: str = "", meta: dict[str, Any] | None = None,
                 target: str = "") -> None:
        self.name = name
        self.description = description
        self.meta = dict(meta or {})
        self._obj = obj
        self._target = target

    @property
    def obj(self) -> T:
        """The registered object (imported now if it was declared and not loaded yet)."""
        if self._target:
            module, _, attribute = self._target.partition(":")
            self._obj = getattr(importlib.import_module(module), attribute)
            self._target = ""
        return self._obj  # type: ignore[return-value]

    @property
    def loaded(self) -> bool:
        """False while a declared entry's module has not been imported."""
        return not self._target

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self._target or self._obj!r})"


class Registry(Generic[T]):
    """Registers objects by name; `get` fails with the closest names when a name is unknown."""

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, Entry[T]] = {}

    def _add(self, entry: Entry[T]) -> None:
        if entry.name in self._entries:
            warnings.warn(f"{self.kind} {entry.name!r} registered twice; the later one wins", stacklevel=3)
        self._entries[entry.name] = entry

    def register(self, name: str, description: str = "", **meta: Any) -> Callable[[T], T]:
        """Decorator that registers `obj` under `name` (re-registering warns and replaces)."""

        def decorator(obj: T) -> T:
            doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._add(Entry(name, obj, doc, meta))
            return obj

        return decorator

    def declare(self, name: str, target: str, description: str, **meta: Any) -> None:
        """Register `name` lazily: `target` ("package.module:attribute") is imported on first use.

        The description and metadata must be cheap to hold (strings, small callables that do not
        import heavy libraries), since they are what `transferkit list` shows.
        """
        if ":" not in target:
            raise ValueError(f"declare({name!r}): target must be 'package.module:attribute', not {target!r}")
        self._add(Entry(name, None, description, meta, target=target))

    def entry(self, name: str) -> Entry[T]:
        """The entry registered under `name`; raises UnknownNameError listing close matches."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())} "
                f"(see `transferkit list {self.plural}`)."
            ) from None

    def get(self, name: str) -> T:
        """The object registered under `name` (imported now if it was declared)."""
        return self.entry(name).obj

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entries(self) -> Iterator[Entry[T]]:
        return (self._entries[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
