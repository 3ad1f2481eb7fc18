"""A small lazy registry of implementations found by key.

Built-ins are a literal mapping from key to a ``"module:attribute"`` string; third parties add
keys through an entry-point group, read once and only when a key is missing. Nothing is imported
until a key is looked up, so registries cost nothing at ``import fitscribe``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable, Generic, Mapping, TypeVar

from fitscribe.errors import ConfigError, FitscribeWarning

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Map keys to objects named by dotted paths, extended by an entry-point group.

    Args:
        kind: What the registry holds, for messages (e.g. ``"tracking store"``).
        group: The entry-point group third parties register under.
        builtins: Key to ``"module:attribute"`` for the implementations shipped with fitscribe.
    """

    def __init__(self, kind: str, group: str, builtins: Mapping[str, str]) -> None:
        self.kind = kind
        self.group = group
        self._paths: dict[str, str] = dict(builtins)
        self._builtin_keys = frozenset(builtins)
        self._loaded: dict[str, T] = {}
        self._entry_points_read = False

    def register(self, key: str, target: "str | T") -> Callable[[], None]:
        """Register ``target`` (an object or a ``"module:attribute"`` path) under ``key``.

        Returns:
            A callable that undoes the registration.
        """
        key = key.lower()
        previous_path = self._paths.get(key)
        previous_obj = self._loaded.get(key)
        if isinstance(target, str):
            self._paths[key] = target
            self._loaded.pop(key, None)
        else:
            self._paths[key] = f"<object {target!r}>"
            self._loaded[key] = target

        def undo() -> None:
            if previous_path is None:
                self._paths.pop(key, None)
            else:
                self._paths[key] = previous_path
            if previous_obj is None:
                self._loaded.pop(key, None)
            else:
                self._loaded[key] = previous_obj

        return undo

    def keys(self) -> list[str]:
        """Return every registered key, entry points included, sorted."""
        self._read_entry_points()
        return sorted(self._paths)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key.lower() not in self._paths:
            self._read_entry_points()
        return key.lower() in self._paths

    def get(self, key: str) -> T:
        """Return the object registered under ``key``, importing it on first use.

        Raises:
            ConfigError: No implementation is registered under ``key``.
        """
        key = key.lower()
        if key in self._loaded:
            return self._loaded[key]
        if key not in self._paths:
            self._read_entry_points()
        if key not in self._paths:
            known = ", ".join(repr(k) for k in self.keys())
            raise ConfigError(
                f"No {self.kind} is registered for {key!r}. Known: {known}. Third-party packages "
                f"register more under the entry-point group {self.group!r}."
            )
        obj: T = _import_path(self._paths[key])
        self._loaded[key] = obj
        return obj

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for name, value, dist in entry_points(self.group):
            key = name.lower()
            if key in self._builtin_keys:
                warnings.warn(
                    f"The {self.kind} {key!r} from {dist} clashes with fitscribe's built-in one; "
                    "the built-in is used.",
                    FitscribeWarning,
                    stacklevel=3,
                )
                continue
            self._paths.setdefault(key, value)


def entry_points(group: str) -> list[tuple[str, str, str]]:
    """Return ``(name, value, distribution)`` for every entry point of ``group`` installed on ``sys.path``.

    Reads only the ``entry_points.txt`` files of installed distributions, and parses only those
    that mention the group: a few milliseconds, where ``importlib.metadata.entry_points`` costs
    tens (it parses every distribution's metadata). The first distribution of a name on
    ``sys.path`` wins, as with ``importlib.metadata``.
    """
    import os
    import sys

    found: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    header = f"[{group}]"
    for base in sys.path:
        base = base or "."
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            dist = entry.rsplit(".", 1)[0].split("-")[0].replace("_", "-").lower()
            if dist in seen:
                continue
            try:
                with open(os.path.join(base, entry, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                seen.add(dist)
                continue
            seen.add(dist)
            if header in text:
                found.extend((name, value, dist) for name, value in _section(text, header))
    return found


def _section(text: str, header: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line == header
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            items.append((name.strip(), value.strip()))
    return items


def _import_path(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj
