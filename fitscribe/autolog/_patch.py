"""Reversible monkeypatches: ``Patch`` replaces one attribute, ``PatchSet`` owns many.

A patch records the **raw** original from the ``__dict__`` of the class that defines it (so a
staticmethod, classmethod or property stays what it was) and whether the owner only inherited it.
Reverting puts the raw object back, or deletes our attribute when the original was inherited.
Reverting twice does nothing, and a marker on our wrappers prevents wrapping twice.
"""

from __future__ import annotations

import functools
import threading
import types
from typing import Any, Callable

__all__ = ["Patch", "PatchSet", "is_patched", "patch_of", "original_of"]

_MARKER = "__fitscribe_patch__"


class _DescriptorWrapper:
    """Wraps a method-producing descriptor (not a plain function) such as scikit-learn's
    ``available_if``: attribute lookup still goes through the original descriptor (so
    ``hasattr`` keeps its meaning), and the method it yields is wrapped."""

    def __init__(self, raw: Any, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.raw = raw

        def unbound(obj: Any, *args: Any, **kwargs: Any) -> Any:
            return raw.__get__(obj, type(obj))(*args, **kwargs)

        inner = getattr(raw, "fn", None) or getattr(raw, "fget", None) or getattr(raw, "__func__", None)
        self.function = functools.wraps(inner)(make_wrapper(unbound)) if inner is not None else make_wrapper(unbound)

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        bound = self.raw.__get__(obj, owner)  # raises AttributeError when the method is unavailable
        if obj is None:
            return bound
        return types.MethodType(self.function, obj)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def patch_of(obj: Any) -> "Patch | None":
    """Return the :class:`Patch` that made the wrapper ``obj``, or None for anything else."""
    func = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
    return getattr(func, _MARKER, None)


def is_patched(obj: Any) -> bool:
    """Return True when ``obj`` is a wrapper made by :class:`Patch`."""
    return patch_of(obj) is not None


def original_of(obj: Any) -> Any:
    """Return the function a wrapper made by :class:`Patch` replaced (or ``obj`` itself)."""
    patch = patch_of(obj)
    return patch.raw if patch is not None else obj


def _lookup_raw(owner: Any, name: str) -> tuple[Any, bool]:
    """Return (raw attribute, defined on owner itself) looked up along the MRO for classes."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in klass.__dict__:
                return klass.__dict__[name], klass is owner
        raise AttributeError(f"{owner.__qualname__} has no attribute {name!r}")
    namespace = vars(owner)
    if name not in namespace:
        raise AttributeError(f"{owner!r} has no attribute {name!r}")
    return namespace[name], True


class Patch:
    """Replace ``owner.<name>`` by ``make_wrapper(original)`` until :meth:`revert`.

    ``make_wrapper`` receives the plain original function (unwrapped from staticmethod or
    classmethod) and returns the wrapper, which is re-wrapped the same way. ``functools.wraps``
    is applied, so the wrapper keeps the original's name, docstring and signature.

    Args:
        owner: A class or module.
        name: The attribute to replace.
        make_wrapper: ``original -> wrapper``.
    """

    def __init__(self, owner: Any, name: str, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.owner = owner
        self.name = name
        self.raw, self.own = _lookup_raw(owner, name)
        if is_patched(self.raw):
            raise ValueError(f"{getattr(owner, '__qualname__', owner)}.{name} is already patched by fitscribe")
        kind = type(self.raw) if isinstance(self.raw, (staticmethod, classmethod)) else None
        self.wrapper: Any
        if kind is None and not isinstance(self.raw, types.FunctionType) and hasattr(self.raw, "__get__"):
            self.wrapper = _DescriptorWrapper(self.raw, make_wrapper)  # e.g. scikit-learn's available_if
            setattr(self.wrapper, _MARKER, self)
        else:
            function = self.raw.__func__ if kind is not None else self.raw
            wrapper = functools.wraps(function)(make_wrapper(function))
            setattr(wrapper, _MARKER, self)
            self.wrapper = kind(wrapper) if kind is not None else wrapper
        self.applied = False

    def apply(self) -> "Patch":
        """Install the wrapper; return self."""
        if not self.applied:
            setattr(self.owner, self.name, self.wrapper)
            self.applied = True
        return self

    def revert(self) -> None:
        """Put the original back exactly (or remove our attribute if it was inherited)."""
        if not self.applied:
            return
        current = self.owner.__dict__.get(self.name) if isinstance(self.owner, type) else vars(self.owner).get(self.name)
        if current is self.wrapper:
            if self.own:
                setattr(self.owner, self.name, self.raw)
            else:
                delattr(self.owner, self.name)
        self.applied = False


class PatchSet:
    """The patches of one integration: apply many, revert all at once, thread-safely."""

    def __init__(self) -> None:
        self._patches: list[Patch] = []
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._patches)

    def patch(self, owner: Any, name: str, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Patch | None:
        """Patch ``owner.<name>`` unless it is already patched; return the patch or None."""
        with self._lock:
            raw, _ = _lookup_raw(owner, name)
            if is_patched(raw):
                return None
            patch = Patch(owner, name, make_wrapper).apply()
            self._patches.append(patch)
            return patch

    def revert_all(self) -> None:
        """Revert every patch, newest first. Calling it again does nothing."""
        with self._lock:
            for patch in reversed(self._patches):
                patch.revert()
            self._patches.clear()
