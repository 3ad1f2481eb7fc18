"""Who is changing things: the actor the model registry's audit trail records.

A :class:`contextvars.ContextVar`: in a Python process it is the OS user (from
:func:`fitscribe.run_context.current_user`); the server sets it per request to the authenticated
identity (``"anonymous"`` without an auth file), and code may act on someone's behalf with
:func:`acting_as`.

>>> with acting_as("alice"):
...     current_actor()
'alice'
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Iterator

__all__ = ["current_actor", "acting_as", "set_actor", "reset_actor", "ANONYMOUS"]

ANONYMOUS = "anonymous"
"""The actor of a server request when the server has no auth file."""

_ACTOR: ContextVar[str | None] = ContextVar("fitscribe_actor", default=None)


def current_actor() -> str:
    """Return who is acting now: the name set by :func:`acting_as` (or the server), else the OS user."""
    actor = _ACTOR.get()
    if actor is not None:
        return actor
    from fitscribe.run_context import current_user

    return current_user()


def set_actor(name: str) -> Token[str | None]:
    """Make ``name`` the actor of the current context; pass the token to :func:`reset_actor` after."""
    return _ACTOR.set(name)


def reset_actor(token: Token[str | None]) -> None:
    """Restore the actor that was current before the :func:`set_actor` that returned ``token``."""
    _ACTOR.reset(token)


@contextmanager
def acting_as(name: str) -> Iterator[str]:
    """Record registry changes made inside the ``with`` block as made by ``name``."""
    token = set_actor(name)
    try:
        yield name
    finally:
        reset_actor(token)
