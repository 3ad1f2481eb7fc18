"""Fork safety for the database: a fork waits until no other thread is inside a database call.

A forked child has one thread, the one that called ``fork()``, and a copy of every lock of the
parent in the state it was in at that instant. SQLite holds a mutex of a connection for the whole of
each call on it (a ``COMMIT``, a statement's step, a wait on another process's lock), so the child's
copy of a connection another thread was using at the fork is locked for ever: the first thing the
child does with it, close it (which it must, so that its own connections never share the parent's
lock bookkeeping for the file), waits for a thread it does not have. That was issue 11's
intermittent hang: a ``multiprocessing`` child forked while the parent's metric journal thread was
committing never got past the fork (its stack: ``sqlite3_close`` -> ``pthread_mutex_lock``).

* :data:`GATE` is entered around every use of a database connection (``with GATE: ...``): the
  embedded store's transactions, reads, connection opening and closing, and each SQLAlchemy
  connection of the SQL store. It costs one uncontended lock round trip per section.
* Before a fork (``os.register_at_fork``) the forking thread waits until no other thread is inside a
  section, at most :attr:`ForkGate.wait_s` seconds, and new sections wait until the fork is done. So
  the child's copies are idle (no call in progress, no transaction open) and closing them is safe.
* If the wait timed out (a thread stayed inside a database call that long, e.g. waiting on another
  process's lock), the fork goes ahead and :func:`split_at_fork` is True in the child: it must then
  not touch the parent's connections at all, but keep them unclosed for its whole life
  (:func:`keep_forever`) and open its own.
* The forking thread's own sections are not waited for (it cannot wait on itself), and a section
  opened by the forking thread while it waits (a garbage-collected connection closing) never waits.

Standard library only: imported by the embedded store on its first connection.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any, Callable, Iterator, ParamSpec, TypeVar

__all__ = ["ForkGate", "GATE", "gated", "split_at_fork", "keep_forever", "WAIT_S"]

P = ParamSpec("P")
T = TypeVar("T")

WAIT_S = 10.0
"""How long a fork waits at most for other threads' database calls to end."""


class ForkGate:
    """Sections a fork must not split (a context manager; re-entrant in a thread).

    Attributes:
        wait_s: Seconds a fork waits at most for the sections open in other threads to end (and a
            new section for a pending fork to be done).
    """

    def __init__(self, wait_s: float = WAIT_S) -> None:
        self.wait_s = wait_s
        self._local = threading.local()
        self._reset(inside=0)

    def _reset(self, inside: int) -> None:
        self._lock = threading.RLock()  # re-entrant: a connection collected inside may close in a section
        self._cond = threading.Condition(self._lock)
        self._inside = inside  # sections open now, in every thread
        self._forks = 0  # forks waiting or in progress
        self._split = False

    def __enter__(self) -> ForkGate:
        local = self._local
        depth = getattr(local, "depth", 0)
        with self._lock:
            if self._forks and not depth and not getattr(local, "forking", False):
                self._cond.wait_for(lambda: not self._forks, timeout=self.wait_s)
            self._inside += 1
        local.depth = depth + 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._local.depth -= 1
        with self._lock:
            self._inside -= 1
            if self._forks:
                self._cond.notify_all()

    @property
    def inside(self) -> int:
        """Return how many sections are open now, in every thread (for tests and diagnostics)."""
        return self._inside

    def before_fork(self) -> None:
        """Wait (at most ``wait_s``) until only the forking thread's own sections are open."""
        local = self._local
        local.forking = True
        own = getattr(local, "depth", 0)
        with self._cond:
            self._forks += 1
            local.clean = self._cond.wait_for(lambda: self._inside <= own, timeout=self.wait_s)

    def after_fork_in_parent(self) -> None:
        """Let the sections that waited for the fork go on."""
        with self._cond:
            self._forks -= 1
            self._cond.notify_all()
        self._local.forking = False

    def after_fork_in_child(self) -> None:
        """Start afresh with the forking thread's own sections (its lock may have been held)."""
        local = self._local
        self._reset(inside=getattr(local, "depth", 0))
        self._split = not getattr(local, "clean", True)
        local.forking = False

    @property
    def split(self) -> bool:
        """True in a child forked while another thread was still inside a section."""
        return self._split


GATE = ForkGate()
"""The process's gate around database calls (see the module docstring)."""
_KEPT: list[Any] = []
"""Objects a split child must never close or collect (their locks may be held for ever)."""


def gated(generator: Callable[P, Iterator[T]]) -> Callable[P, Iterator[T]]:
    """Run a generator function (a ``@contextmanager``'s body) inside :data:`GATE` from its start
    to its end, the caller's block included: put it under ``@contextmanager``."""

    @functools.wraps(generator)
    def inside(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        with GATE:
            return (yield from generator(*args, **kwargs))

    return inside


def split_at_fork() -> bool:
    """Return True in a child forked while another thread was inside a database call.

    Such a child must not close or use its copies of the parent's connections: see
    :func:`keep_forever`.
    """
    return GATE.split


def keep_forever(obj: Any) -> None:
    """Keep ``obj`` referenced for the life of this process, so it is never closed by collection."""
    _KEPT.append(obj)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=GATE.before_fork, after_in_parent=GATE.after_fork_in_parent,
                        after_in_child=GATE.after_fork_in_child)
