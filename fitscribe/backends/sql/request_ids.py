"""Idempotent log-batch requests: the ids of applied requests, recorded in the batch's transaction.

A client that lost the answer to a log-batch request sends it again. When the request carries an id
(fitscribe's REST store sends ``X-Fitscribe-Request-Id``), a repeat finds it in the database (so any
replica answers it) and is answered with success without being applied again; requests without an
id (the mlflow client) are applied each time. Ids are kept for ``RETENTION_MS`` (3 days): about one
request in ``PRUNE_ONE_IN`` (by a hash of its id: no state between requests) deletes older ones.
"""

from __future__ import annotations

import re
import zlib

import sqlalchemy as sa

from fitscribe._time import now_ms
from fitscribe.errors import InvalidValueError

from . import tables as t

__all__ = ["RETENTION_MS", "PRUNE_ONE_IN", "check_request_id", "applied", "record"]

RETENTION_MS = 3 * 24 * 3600 * 1000
PRUNE_ONE_IN = 256
_VALID = re.compile(r"[A-Za-z0-9_.:-]{8,64}")


def check_request_id(request_id: str) -> str:
    """Return a request id if valid: 8 to 64 letters, digits, ``_``, ``.``, ``:`` or ``-``.

    Raises:
        InvalidValueError: The id is malformed.
    """
    if not isinstance(request_id, str) or not _VALID.fullmatch(request_id):
        raise InvalidValueError(
            f"Invalid request id {repr(request_id)[:80]}: use 8 to 64 letters, digits, '_', '.', ':' or '-' (e.g. a uuid4 hex)."
        )
    return request_id


def applied(conn: sa.Connection, request_id: str) -> bool:
    """Return True when a request with this id was applied already."""
    found = conn.execute(sa.select(t.request_ids.c.request_id).where(t.request_ids.c.request_id == request_id))
    return found.first() is not None


def record(conn: sa.Connection, request_id: str) -> None:
    """Record a request id in the current transaction (and now and then prune the old ones)."""
    now = now_ms()
    conn.execute(t.request_ids.insert().values(request_id=request_id, created_time=now))
    if zlib.crc32(request_id.encode()) % PRUNE_ONE_IN == 0:
        conn.execute(t.request_ids.delete().where(t.request_ids.c.created_time < now - RETENTION_MS))
