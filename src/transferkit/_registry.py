"""A small name → object registry shared by backbones, strategies, tasks and scores.

Each registry holds typed metadata per entry (`entry.info`, a frozen dataclass subclassing `Info`,
as timm's `PretrainedCfg`), so a wrong or misspelt field fails when it is registered, not when a
listing or a ranking first reads it.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import importlib
import types
import typing
import warnings
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")
I = TypeVar("I", bound="Info")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Info:
    """What a registry knows about an entry without importing it; each registry subclasses it.

    Fields are checked against their annotations on creation (plain classes, unions and
    `tuple[X, ...]`), so `modalities="text"` instead of `("text",)` fails where it is written.
    """

    description: str = ""  # one line shown by `transferkit list`

    def __post_init__(self) -> None:
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                raise TypeError(f"{type(self).__name__}.{f.name} = {value!r}: expected {_type_name(hints[f.name])}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except NameError:  # an annotation names a TYPE_CHECKING-only class: check no field rather than fail
        return {f.name: Any for f in dataclasses.fields(cls)}


def _matches(value: Any, hint: Any) -> bool:
    """Whether `value` fits annotation `hint`; annotations this does not model (Callable, Any) accept anything."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if hint is type(None):
        return value is None
    if hint is float:  # the numeric tower: an int is a fine float
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type) and origin is None:
        return isinstance(value, hint)
    return True


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) and typing.get_origin(hint) is None else str(hint)


def import_target(target: str) -> Any:
    """The object a `"package.module:attribute"` string names (imports the module)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class Entry(Generic[T]):
    """One registered object with its typed metadata (`info`).

    A declared entry holds only the `"package.module:attribute"` its object is imported from; the
    import happens on first access of `obj`, so listing names and infos stays light (no torch,
    Lightning or transformers at CLI start-up).
    """

    __slots__ = ("name", "info", "_obj", "_target")

    def __init__(self, name: str, info: Info, obj: T | None = None, target: str = "") -> None:
        self.name = name
        self.info = info
        self._obj = obj
        self._target = target

    @property
    def description(self) -> str:
        """The one-line description (`info.description`)."""
        return self.info.description

    @property
    def obj(self) -> T:
        """The registered object (imported now if it was declared and not loaded yet)."""
        if self._target:
            self._obj = import_target(self._target)
            self._target = ""
        return self._obj  # type: ignore[return-value]

    @property
    def loaded(self) -> bool:
        """False while a declared entry's module has not been imported."""
        return not self._target

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self._target or self._obj!r})"


class Registry(Generic[T, I]):
    """Registers objects by name with an `info` of one type; `get` fails with the closest names
    when a name is unknown."""

    def __init__(self, kind: str, info: type[I] = Info, plural: str | None = None) -> None:  # type: ignore[assignment]
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.info_type = info
        self._entries: dict[str, Entry[T]] = {}

    def _checked(self, name: str, info: I | None) -> I:
        """`info` if it is this registry's info type (a subclass is fine); raises TypeError otherwise."""
        if info is None:
            try:
                return self.info_type()
            except TypeError as exc:  # a required field (e.g. a task's modality) was not given
                raise TypeError(f"{self.kind} {name!r}: pass a {self.info_type.__name__}(...) ({exc})") from None
        if not isinstance(info, self.info_type):
            raise TypeError(f"{self.kind} {name!r}: info must be a {self.info_type.__name__}, "
                            f"not {type(info).__name__}")
        return info

    def _add(self, entry: Entry[T]) -> None:
        if entry.name in self._entries:
            warnings.warn(f"{self.kind} {entry.name!r} registered twice; the later one wins", stacklevel=3)
        self._entries[entry.name] = entry

    def register(self, name: str, info: I | None = None) -> Callable[[T], T]:
        """Decorator that registers `obj` under `name` (re-registering warns and replaces).

        Without a description in `info`, the first line of the object's docstring is used.
        """
        checked = self._checked(name, info)

        def decorator(obj: T) -> T:
            entry_info = checked
            if not entry_info.description:
                doc = (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
                entry_info = dataclasses.replace(entry_info, description=doc)
            self._add(Entry(name, entry_info, obj))
            return obj

        return decorator

    def declare(self, name: str, target: str, info: I | None = None) -> None:
        """Register `name` lazily: `target` ("package.module:attribute") is imported on first use.

        `info` must be cheap to hold (strings, flags, small dataclasses; targets as strings),
        since it is what `transferkit list` shows without importing anything.
        """
        if ":" not in target:
            raise ValueError(f"declare({name!r}): target must be 'package.module:attribute', not {target!r}")
        self._add(Entry(name, self._checked(name, info), target=target))

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
