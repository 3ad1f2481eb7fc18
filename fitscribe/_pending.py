"""The process-wide count of background work that reads must wait for (read-your-writes).

Autolog finishes a run in the background after the patched ``fit`` returns (plots, report, child
runs, the run's end). Each piece of such work is counted here from the moment it is queued until
it is stored; :func:`settle`, called at the top of every ``Client`` read, waits until the count is
zero, so a read made after ``fit`` returned sees everything autolog records for that call.

* An idle read costs one global lookup and a comparison (the count is a plain int).
* A read made by the background worker itself never waits (it would wait on itself): a thread
  inside :func:`working` is exempt.
* A forked child starts with nothing pending (``os.register_at_fork``): it has not inherited the
  parent's worker thread, so it must not wait for it.

Standard library only: ``fitscribe.client`` imports this module.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["add", "done", "settle", "working", "pending", "waiting", "reset"]

_count = 0
"""Pieces of work queued and not yet done (read without the lock on the fast path)."""
_waiting = 0
"""Reads blocked in :func:`settle` right now (for tests and diagnostics)."""
_cond = threading.Condition()
_local = threading.local()


def add() -> None:
    """Count one piece of background work as pending (call before queueing it)."""
    global _count
    with _cond:
        _count += 1


def done() -> None:
    """Count one piece of background work as finished (call once per :func:`add`, even on error)."""
    global _count
    with _cond:
        _count = max(0, _count - 1)
        if _count == 0:
            _cond.notify_all()


def pending() -> int:
    """Return how many pieces of background work are pending."""
    return _count


def waiting() -> int:
    """Return how many reads are blocked in :func:`settle` now."""
    return _waiting


@contextmanager
def working() -> Iterator[None]:
    """Mark the current thread as doing autolog's own work while inside: its reads do not wait.

    The background worker runs inside it (it must never wait on itself), and so does autolog's
    bookkeeping around a training call (opening the run), which needs nothing the worker writes.
    """
    previous = getattr(_local, "worker", False)
    _local.worker = True
    try:
        yield
    finally:
        _local.worker = previous


def settle(timeout: float | None = None) -> bool:
    """Wait until no background work is pending; return False if ``timeout`` seconds passed first.

    Returns at once when nothing is pending, and when called from a background worker.
    """
    global _waiting
    if _count == 0 or getattr(_local, "worker", False):
        return True
    with _cond:
        _waiting += 1
        try:
            return _cond.wait_for(lambda: _count == 0, timeout=timeout)
        finally:
            _waiting -= 1


def reset() -> None:
    """Forget all pending work and start with a fresh lock (in a forked child; for tests)."""
    global _count, _waiting, _cond
    _count = 0
    _waiting = 0
    _cond = threading.Condition()


if hasattr(os, "register_at_fork"):  # POSIX: the child has no worker thread to wait for
    os.register_at_fork(after_in_child=reset)
