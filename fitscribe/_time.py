"""The current time as MLflow records it: whole milliseconds since the Unix epoch.

Every timestamp fitscribe writes (run start and end, metric points, experiment and registry
updates) comes from :func:`now_ms`, so a test that moves the clock moves it everywhere.
"""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Return the wall-clock time in integer milliseconds since the epoch.

    >>> now_ms() > 1_600_000_000_000
    True
    """
    return int(time.time() * 1000)
