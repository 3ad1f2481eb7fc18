"""Refusing data that is not fitscribe's before anything is written to it.

Opening a store writes (WAL mode, the schema, the ``Default`` experiment), so what a tracking URI
points at is looked at first, read-only:

- a folder of an embedded store that is MLflow's ``mlruns`` (numbered experiment folders with a
  ``meta.yaml``, or a ``.trash`` folder) and holds no ``tracking.db``;
- a SQLite file that is not a SQLite database, or that has tables but not fitscribe's revision
  stamp (MLflow's ``mlflow.db``, another application's database);
- on any database, tables with an Alembic stamp that is not one of fitscribe's revisions.

Each is refused with :class:`~fitscribe.errors.ForeignStoreError`, saying what it is and what to
do; the file or folder is left byte for byte as it was. No SQLAlchemy import here.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Collection
from urllib.parse import quote

from fitscribe.errors import ForeignStoreError
from fitscribe.uri import redact

__all__ = ["is_fitscribe_revision", "check_folder", "check_sqlite_file", "check_tables"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MLFLOW_TABLES = frozenset(("metrics", "experiments", "runs"))
_IMPORT_HINT = ("Open it with MLflow, or copy its runs into a fitscribe store with "
                "`fitscribe import mlflow {source}` (that command is coming in a later release); "
                "to start a fitscribe store, give a new folder or file.")


def is_fitscribe_revision(revision: str | None) -> bool:
    """Return True for an Alembic stamp of fitscribe's (four digits, as in migrations/versions;
    MLflow's are 12 hex digits). A later fitscribe's stamp counts: the revision check refuses it."""
    return revision is not None and len(revision) == 4 and revision.isdigit()


def check_folder(folder: str, db_filename: str) -> None:
    """Refuse an embedded store's folder that is MLflow's ``mlruns`` (and has no ``db_filename``).

    Raises:
        ForeignStoreError: The folder holds MLflow file-store data.
    """
    try:
        names = os.listdir(folder)
    except OSError:  # missing (a new store) or unreadable (opening will say so)
        return
    if db_filename in names:
        return
    mlflow = ".trash" in names or any(
        name.isdigit() and os.path.isfile(os.path.join(folder, name, "meta.yaml")) for name in names
    )
    if mlflow:
        raise ForeignStoreError(
            f"The folder {folder!r} is an MLflow file store (mlruns), not a fitscribe store; it was left "
            f"unchanged. {_IMPORT_HINT.format(source=folder)}"
        )


def check_sqlite_file(path: str, uri: str) -> None:
    """Refuse an existing SQLite file fitscribe did not create, reading it without changing it.

    A missing or empty file, or one without tables, is a new store. The file is opened immutable
    (no locks, no journal, nothing created beside it); tables still only in the write-ahead log of
    a live fitscribe store are not seen, and the normal open checks those.

    Raises:
        ForeignStoreError: The file is not a SQLite database, or holds tables without fitscribe's
            revision stamp.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError:
        return  # missing: a new store (or opening says why it cannot be read)
    if not head:
        return
    if head != _SQLITE_MAGIC:
        raise ForeignStoreError(
            f"The tracking database {redact(uri)!r} is not a SQLite database; it was left unchanged. "
            "Give the path of a fitscribe store, or a new file."
        )
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?immutable=1", uri=True)
    except sqlite3.Error:
        return  # opening it for real reports the error
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    except sqlite3.Error:
        return
    finally:
        conn.close()
    check_tables(tables, revision, uri)


def check_tables(tables: Collection[str], revision: str | None, uri: str) -> None:
    """Refuse a database whose tables are not fitscribe's: tables without one of fitscribe's
    revision stamps. No tables at all is a new database.

    Args:
        tables: The names of the database's tables.
        revision: The Alembic stamp, or None if there is none.
        uri: The tracking URI, for the message.

    Raises:
        ForeignStoreError: Say what the database is and what to do.
    """
    tables = set(tables) - {"sqlite_sequence"}
    if is_fitscribe_revision(revision) or (not tables - {"alembic_version"} and revision is None):
        return
    shown = redact(uri)
    if _MLFLOW_TABLES <= tables:
        stamp = f" (MLflow schema revision {revision})" if revision else ""
        raise ForeignStoreError(
            f"The tracking database {shown!r} is an MLflow tracking database{stamp}, not a fitscribe "
            f"store; it was left unchanged. {_IMPORT_HINT.format(source=shown)}"
        )
    what = f"the schema revision {revision!r}, which is not fitscribe's" if revision else "no fitscribe revision stamp"
    listed = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
    raise ForeignStoreError(
        f"The tracking database {shown!r} was not created by fitscribe: it has tables ({listed}) and "
        f"{what}. It was left unchanged; give the path of a fitscribe store, or a new file."
    )
