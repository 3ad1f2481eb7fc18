"""Post-import hooks: run a callback right after a module (or any of its submodules) is imported.

``autolog()`` never imports a framework. For a framework already in ``sys.modules`` the callback
runs at once; otherwise a finder on ``sys.meta_path`` wraps the module's loader so the callback
runs right after the module's code has executed, before the importer gets it back. The wrapper
is removed again at that point: ``module.__loader__`` and ``module.__spec__.loader`` are the
original loader.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Sequence

__all__ = ["ImportHooks", "HOOKS"]

Callback = Callable[[ModuleType], None]


class _Loader:
    def __init__(self, inner: Any, hooks: "ImportHooks") -> None:
        self.inner = inner
        self.hooks = hooks

    def create_module(self, spec: Any) -> ModuleType | None:
        create = getattr(self.inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.inner
        if module.__spec__ is not None:
            module.__spec__.loader = self.inner
        self.inner.exec_module(module)
        self.hooks.fire(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Finder:
    def __init__(self, hooks: "ImportHooks") -> None:
        self.hooks = hooks
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if not self.hooks.watches(fullname) or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = importlib.util.find_spec(fullname)
        except (ImportError, ValueError):
            return None
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, self.hooks)
        return spec


class ImportHooks:
    """Callbacks by top-level package name, fired for the package and each of its submodules.

    >>> hooks = ImportHooks()
    >>> seen = []
    >>> undo = hooks.on_import("json", lambda m: seen.append(m.__name__))
    >>> "json" in seen   # json is already imported: the callback ran at once
    True
    >>> undo()
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = {}
        self._lock = threading.RLock()
        self._finder = _Finder(self)

    def watches(self, fullname: str) -> bool:
        """Return True when a callback waits for ``fullname``'s top-level package."""
        return fullname.partition(".")[0] in self._callbacks

    def on_import(self, package: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(module)`` for ``package`` and every submodule, now for those already
        imported and later for each one imported. Returns a function that removes the callback."""
        with self._lock:
            self._callbacks.setdefault(package, []).append(callback)
            if self._finder not in sys.meta_path:
                sys.meta_path.insert(0, self._finder)
        for name, module in list(sys.modules.items()):
            if module is not None and (name == package or name.startswith(package + ".")):
                callback(module)

        def undo() -> None:
            with self._lock:
                callbacks = self._callbacks.get(package, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    self._callbacks.pop(package, None)
                if not self._callbacks and self._finder in sys.meta_path:
                    sys.meta_path.remove(self._finder)

        return undo

    def fire(self, module: ModuleType) -> None:
        """Run the callbacks waiting for ``module``'s top-level package."""
        with self._lock:
            callbacks = list(self._callbacks.get(module.__name__.partition(".")[0], ()))
        for callback in callbacks:
            callback(module)


HOOKS = ImportHooks()
"""The process's import hooks (one finder on ``sys.meta_path`` at most)."""
