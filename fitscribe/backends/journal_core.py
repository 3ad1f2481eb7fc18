"""The file-journal core both journals build on (sql/journal.py and rest/journal.py).

A journal file belongs to the process that holds an exclusive ``flock`` on it. A file nobody
holds is an *orphan*: its process ended (crashed, killed) before the file's contents reached their
destination, and any later process may take it over and replay it. This module owns the three rules
that make that safe, so that each journal only decides what a record means:

- **Created locked.** A new file is created under a temporary name (``.new-...``, which orphan
  scans never look at), locked, and only then renamed to its real name: no other process can ever
  see a live file unlocked and take it over (``FITSCRIBE_TEST_JOURNAL_CREATE_DELAY_S``, a test hook,
  sleeps between the creation and the lock to show it). A temporary file left by a process killed
  in that instant is empty and swept after an hour.
- **Orphans taken under the lock.** :func:`orphans` yields the files of a folder whose lock it
  could take, still locked, after checking that the name still leads to the locked file (another
  process may have replayed and deleted it meanwhile).
- **Forks.** A forked child inherits the parent's open files, and with them its locks. After a
  fork the child closes its copies (``os.register_at_fork``), so a parent killed later leaves an
  orphan that can be replayed at once, and the child never writes into its parent's journal;
  objects holding other per-process state register a reset with :func:`reset_after_fork`. A
  ``multiprocessing`` child ends with ``os._exit`` (no ``atexit``): :func:`close_at_child_exit`
  closes a journal from multiprocessing's own exit hook instead.

Back-pressure: :func:`wait_for_room` makes a producer wait, with a deadline, while a queue is
full, whatever the consumer's last error was.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import weakref
from typing import Callable, Iterator, Protocol

__all__ = ["JournalFile", "close_at_child_exit", "locks_supported", "orphans", "reset_after_fork",
           "wait_for_room", "ENV_CREATE_DELAY", "TEMP_PREFIX"]

ENV_CREATE_DELAY = "FITSCRIBE_TEST_JOURNAL_CREATE_DELAY_S"
"""Test hook: seconds to sleep between creating a journal file and locking it."""
TEMP_PREFIX = ".new-"
STALE_TEMP_S = 3600.0
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def locks_supported() -> bool:
    """Return True where advisory file locks exist (POSIX)."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        return False
    return True


def _try_lock(fd: int) -> bool:
    """Take an exclusive, non-blocking lock; True if taken (always True without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no orphan detection, own files only
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class _ForkResettable(Protocol):
    def _after_fork_in_child(self) -> None: ...


_RESET_IN_CHILD: weakref.WeakSet[_ForkResettable] = weakref.WeakSet()
_RESET_GUARD = threading.Lock()


def reset_after_fork(obj: _ForkResettable) -> None:
    """Call ``obj._after_fork_in_child()`` in a forked child (for as long as ``obj`` lives)."""
    with _RESET_GUARD:
        _RESET_IN_CHILD.add(obj)


def _after_fork_in_child() -> None:
    global _RESET_GUARD
    _RESET_GUARD = threading.Lock()  # it may have been held by another thread at the fork
    for obj in list(_RESET_IN_CHILD):
        try:
            obj._after_fork_in_child()
        except Exception:  # pragma: no cover - a reset must never break the child
            pass


def close_at_child_exit(obj: object, close: Callable[[], object]) -> None:
    """In a ``multiprocessing`` child, call ``close`` when the child ends (while ``obj`` lives).

    Such a child ends with ``os._exit``, so ``atexit`` hooks do not run; its parent reads right
    after ``join()``. Call it after the child started (a hook registered at the fork is cleared).
    """
    import sys

    process, util = sys.modules.get("multiprocessing.process"), sys.modules.get("multiprocessing.util")
    if process is not None and util is not None and process.parent_process() is not None:
        util.Finalize(obj, close, exitpriority=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class JournalFile:
    """A journal file this process created and holds locked (append-only writes through ``fd``).

    Args:
        path: The file.
        fd: Its descriptor, opened for appending and locked.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self._pid = os.getpid()
        reset_after_fork(self)

    @classmethod
    def create(cls, folder: str, name: str) -> JournalFile:
        """Create ``folder/name`` and lock it before it appears under that name.

        Raises:
            OSError: The folder or the file cannot be created.
        """
        os.makedirs(folder, exist_ok=True)
        final = os.path.join(folder, name)
        while True:
            temp = os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _CLOEXEC, 0o644)
            try:
                _test_delay()
                if _try_lock(fd):
                    os.rename(temp, final)
                    return cls(final, fd)
            except FileNotFoundError:  # swept as stale meanwhile: try again under a new name
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    @property
    def owned(self) -> bool:
        """False in a forked child, and once released."""
        return self.fd >= 0 and self._pid == os.getpid()

    def release(self, delete: bool) -> None:
        """Delete the file (when ``delete``), then close it, which releases the lock."""
        if delete and self.owned:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def _after_fork_in_child(self) -> None:
        """Drop the child's copy of the descriptor: the lock stays with the parent alone."""
        fd, self.fd = self.fd, -1
        if fd >= 0 and self._pid != os.getpid():
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass


def _test_delay() -> None:
    delay = os.environ.get(ENV_CREATE_DELAY)
    if delay:
        time.sleep(float(delay))


def orphans(folder: str, suffix: str) -> Iterator[JournalFile]:
    """Yield the files ``folder/*suffix`` that nobody holds, oldest name first, each locked.

    The caller owns each file yielded: it replays it, then releases it (deleting it, or not to
    keep it for later), or keeps it (and its lock) as long as it likes.
    """
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        path = os.path.join(folder, name)
        if name.startswith(TEMP_PREFIX):
            _sweep_stale(path)
            continue
        if not name.endswith(suffix):
            continue
        taken = _take(path)
        if taken is not None:
            yield taken


def _take(path: str) -> JournalFile | None:
    """Lock an orphaned regular file; None if it is held, gone, or not a regular file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | _CLOEXEC)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    try:
        if _try_lock(fd):
            same = os.fstat(fd)
            now = os.stat(path)
            if (same.st_dev, same.st_ino) == (now.st_dev, now.st_ino):
                return JournalFile(path, fd)
    except FileNotFoundError:  # replayed and deleted by another process meanwhile
        pass
    os.close(fd)
    return None


def _sweep_stale(path: str) -> None:
    """Delete a temporary file left by a process killed between creating and naming it."""
    try:
        if time.time() - os.stat(path).st_mtime < STALE_TEMP_S:
            return
    except FileNotFoundError:
        return
    taken = _take(path)
    if taken is not None:
        taken.release(delete=True)


def wait_for_room(changed: threading.Condition, full: Callable[[], bool], timeout: float) -> bool:
    """Wait, holding ``changed``'s lock, until ``full()`` is False or ``timeout`` seconds passed.

    Returns:
        True if there is room, False on timeout (the caller reports it).
    """
    if not full():
        return True
    deadline = time.monotonic() + timeout
    while full():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        changed.wait(min(remaining, 0.5))
    return True
