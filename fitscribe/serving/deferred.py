"""Defer the execution of chosen modules while a model loads, and finish them once the server is ready.

Unpickling a scikit-learn model imports ``sklearn.linear_model`` (or the like), whose import chain
runs ``import pandas`` (``sklearn.utils.fixes``) without using it: pandas' own import is about a
fifth of the CPU from ``fitscribe models serve`` to a loaded model. While the model loads, a
module named here is imported with :class:`importlib.util.LazyLoader`: it is found at once (a
missing module still raises ``ImportError`` where it is imported) and executed on the first
access to one of its attributes, by whoever touches it first (a ``from pandas import DataFrame``
during the load runs it right there). Once the server answers, :func:`finish` executes whatever
is still deferred, on a worker thread; the scoring app makes ``/invocations`` wait for it, so no
two threads can race on a half-executed module (Python 3.11's ``LazyLoader`` is not thread-safe).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Iterator, Sequence

__all__ = ["DEFERRED", "deferring", "still_deferred", "finish"]

DEFERRED = ("pandas",)
"""Modules deferred while a model loads: imported by scikit-learn's import chain, used only when predicting."""


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds the named top-level modules with the other finders and wraps their loader in a LazyLoader."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        """Return the module's spec with a lazy loader, or None for a module not deferred."""
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None


@contextmanager
def deferring(names: Sequence[str] = DEFERRED) -> Iterator[None]:
    """Within the block, importing one of ``names`` (not yet imported) defers its execution.

    Args:
        names: Top-level module names.
    """
    finder = _DeferringFinder([name for name in names if name not in sys.modules])
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _is_deferred(module: ModuleType | None) -> bool:
    return module is not None and type(module) is getattr(importlib.util, "_LazyModule", None)


def still_deferred(names: Sequence[str] = DEFERRED) -> list[str]:
    """Return the names among ``names`` imported but not executed yet."""
    return [name for name in names if _is_deferred(sys.modules.get(name))]


def finish(names: Sequence[str] = DEFERRED) -> None:
    """Execute the modules among ``names`` still deferred (their import errors raise here).

    Run it from one thread only, while no other thread uses these modules.
    """
    for name in still_deferred(names):
        getattr(sys.modules[name], "__name__")  # the first attribute access executes the module
