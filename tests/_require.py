"""Skip locally, fail in CI: one rule for everything the suite may find missing.

A developer's machine may lack an optional package (numpy, PIL, torch...), a database server, the
browser or the MLflow venv: the tests needing it are skipped there, with the reason. In CI (the
``CI`` variable set to any non-empty value: ``true``, ``1``, ``yes``...) nothing may be missing, so
the same tests FAIL instead of being skipped silently::

    from _require import require_module, unavailable

    np = require_module("numpy")              # at module level or inside a test
    go = require_module("plotly.graph_objects", reason="plotly is not installed")
    unavailable("PostgreSQL server not reachable: ...")   # skip locally, fail in CI
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["in_ci", "unavailable", "require_module"]


def in_ci() -> bool:
    """Return True when running in CI: the ``CI`` variable is set to any non-empty value."""
    return bool(os.environ.get("CI", "").strip())


def unavailable(reason: str, *, ci_hint: str = "CI must run every test; install or start what is missing") -> NoReturn:
    """Skip the current test (or module) with ``reason`` locally; fail it in CI.

    Args:
        reason: What is missing, shown in the skip or failure message.
        ci_hint: Appended to the failure message in CI: what CI should have provided.
    """
    if in_ci():
        pytest.fail(f"{reason} ({ci_hint})", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, *, reason: str | None = None) -> ModuleType:
    """Import and return module ``name``; when it cannot be imported, :func:`unavailable`.

    The replacement for ``pytest.importorskip``, which skips even in CI.

    Args:
        name: Dotted module name, e.g. ``"PIL.Image"``.
        reason: Message when the import fails (default: the module and the import error).
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(reason or f"could not import {name!r}: {exc}")
