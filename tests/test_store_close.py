"""Closing a SQL store while another thread still uses one of its connections.

``Engine.dispose`` leaves a connection checked out at that moment to the old pool, still open; a
reference cycle keeps that pool until the garbage collector runs, at some later moment (psycopg then
warned "connection deleted while still open" in whatever test was running: the warning pyproject.toml
used to ignore). Now the connection is closed when the thread gives it back.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest
import sqlalchemy as sa

import fitscribe


def _open_connections(admin: sa.Engine, query: str, name: str) -> Callable[[], int]:
    def count() -> int:
        with admin.connect() as conn:
            return int(conn.execute(sa.text(query), {"name": name}).scalar_one())

    return count


@pytest.mark.parametrize("kind", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                  pytest.param("mysql", marks=pytest.mark.mysql)])
def test_a_store_closed_while_a_thread_reads_leaves_no_connection_open(
        kind: str, request: pytest.FixtureRequest) -> None:
    uri = str(request.getfixturevalue(f"{kind}_uri"))
    admin: Any = request.getfixturevalue("_pg_admin" if kind == "postgresql" else "_mysql_admin")
    query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = :name" if kind == "postgresql"
             else "SELECT count(*) FROM information_schema.processlist WHERE db = :name")
    open_connections = _open_connections(admin, query, uri.rsplit("/", 1)[1].split("?")[0])
    client = fitscribe.Client(uri)
    client.create_experiment("e")
    inside, release = threading.Event(), threading.Event()

    def reader() -> None:
        with client.store.sql_read():  # type: ignore[attr-defined]  # a connection is checked out
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=reader)
    thread.start()
    assert inside.wait(10)
    client.close()  # the reader's connection is checked out
    release.set()
    thread.join(10)
    deadline = time.monotonic() + 5
    while open_connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_connections() == 0
