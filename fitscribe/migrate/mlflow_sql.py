"""Read an MLflow SQL tracking database (SQLite, PostgreSQL, MySQL) directly, read-only.

The database is opened read-only where the driver allows it (SQLite ``mode=ro``; a read-only
session on PostgreSQL and MySQL) and only ever SELECTed from. MLflow's encodings are undone here
(reference: MLflow's SQL store): a NaN point is ``value=0, is_nan=1``; +-inf was clamped to
+-DBL_MAX and becomes +-inf again. Metric rows are fetched through the DB-API cursor in batches of
runs, ordered by (run, key, step, timestamp), and split into columns in C.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from fitscribe.errors import ConfigError, NotFoundError
from fitscribe.entities.logged_model import STATUSES
from fitscribe.uri import redact

from .source import (
    MAX_DOUBLE,
    Series,
    SourceDataset,
    SourceExperiment,
    SourceLoggedModel,
    SourceModel,
    SourceRun,
    SourceVersion,
    unclamp,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["MlflowSqlSource", "is_sql_uri"]

_LOGGED_MODEL_STATUS = dict(enumerate(STATUSES))  # MLflow's LoggedModelStatus enum numbers
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "mysql": "mysql+pymysql",
            "mariadb": "mysql+pymysql"}


def is_sql_uri(uri: str) -> bool:
    """True if ``uri`` names a SQL database (``sqlite:``, ``postgresql:``, ``mysql:``...)."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    return "://" in uri and scheme in ("sqlite", "postgresql", "postgres", "mysql", "mariadb")


def _read_only_engine(uri: str) -> sa.Engine:
    """Create an engine that cannot write: SQLite opened ``mode=ro``, servers in read-only sessions."""
    import sqlalchemy as sa

    scheme, rest = uri.split("://", 1)
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        path = _sqlite_path(uri)
        if not os.path.isfile(path):
            raise NotFoundError(f"No MLflow database file at {path!r} (from {uri!r}).")
        return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    url = f"{_DRIVERS.get(base, scheme)}://{rest}" if "+" not in scheme else uri
    if base in ("postgresql", "postgres"):
        return sa.create_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")

    return engine


def _sqlite_path(uri: str) -> str:
    """The absolute path of the file a ``sqlite:///`` URI names."""
    rest = uri.split("://", 1)[1]
    path = rest[1:] if rest.startswith("/") else rest
    return os.path.abspath(path.split("?", 1)[0])


class MlflowSqlSource:
    """An MLflow SQL database, read directly and never written.

    The constructor does no I/O.

    Args:
        uri: The MLflow tracking URI of the database (``sqlite:///mlflow.db``, ``postgresql://...``).
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.description = redact(uri)
        self._engine: sa.Engine | None = None
        self._tables: set[str] = set()
        self._hashes: dict[tuple[str, str], int] | None = None
        self._key_hashing: Any = None  # the thread hashing every key's points (SQLite)
        self._key_hashes: dict[str, int] | BaseException | None = None
        self._hash_conn: Any = None

    @property
    def engine(self) -> sa.Engine:
        """The read-only engine, created and checked on first use.

        Raises:
            ConfigError: The database is not an MLflow tracking database.
        """
        if self._engine is None:
            import sqlalchemy as sa

            engine = _read_only_engine(self.uri)
            try:
                names = set(sa.inspect(engine).get_table_names())
            except sa.exc.SQLAlchemyError as exc:
                engine.dispose()
                raise ConfigError(f"Cannot read the MLflow database {self.description!r}: {exc.orig}") from exc
            if not {"experiments", "runs", "metrics", "params", "tags"} <= names or "metric_chunks" in names:
                engine.dispose()
                raise ConfigError(
                    f"{self.description!r} is not an MLflow tracking database (it lacks MLflow's tables "
                    "experiments, runs, metrics, params and tags)."
                )
            self._tables = names
            self._engine = engine
        return self._engine

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql.replace("{key}", self._key)))]

    @property
    def _key(self) -> str:
        """The column name ``key`` as this database needs it written (a reserved word on MySQL)."""
        return str(self.engine.dialect.identifier_preparer.quote("key"))

    def experiments(self) -> list[SourceExperiment]:
        """Return every experiment, active and deleted, with its tags (and, on SQLite, start hashing the
        metric points for the verification: an import reads the experiments first)."""
        if self.engine.dialect.name == "sqlite":
            self._start_key_hashes()
        tags: dict[str, dict[str, str]] = {}
        for exp_id, key, value in self._rows("SELECT experiment_id, {key}, value FROM experiment_tags"):
            tags.setdefault(str(exp_id), {})[key] = value or ""
        return [
            SourceExperiment(str(i), name, location or "", stage or "active", created or 0, updated or created or 0,
                             tags.get(str(i), {}))
            for i, name, location, stage, created, updated in self._rows(
                "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
                "FROM experiments ORDER BY experiment_id")
        ]

    def runs(self) -> list[SourceRun]:
        """Return every run, active and deleted, with params, tags and dataset inputs."""
        runs = {
            row[0]: SourceRun(row[0], str(row[1]), row[2], row[3] or "", row[4] or "RUNNING", row[5] or 0, row[6],
                              row[7] or "active", row[8], row[9] or "")
            for row in self._rows(
                "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, "
                "deleted_time, artifact_uri FROM runs ORDER BY start_time, run_uuid")
        }
        for run_id, key, value in self._rows("SELECT run_uuid, {key}, value FROM params"):
            if run_id in runs:
                runs[run_id].params[key] = value
        for run_id, key, value in self._rows("SELECT run_uuid, {key}, value FROM tags"):
            if run_id in runs:
                runs[run_id].tags[key] = value or ""
        for run in runs.values():
            if not run.name:
                run.name = run.tags.get("mlflow.runName") or None
        self._add_inputs(runs)
        return list(runs.values())

    def _add_inputs(self, runs: dict[str, SourceRun]) -> None:
        if not {"datasets", "inputs"} <= self._tables_now():
            return
        datasets = {row[0]: row for row in self._rows(
            "SELECT dataset_uuid, name, digest, dataset_source_type, dataset_source, dataset_schema, dataset_profile "
            "FROM datasets")}
        input_tags: dict[str, dict[str, str]] = {}
        if "input_tags" in self._tables:
            for input_id, name, value in self._rows("SELECT input_uuid, name, value FROM input_tags"):
                input_tags.setdefault(input_id, {})[name] = value
        for input_id, dataset_id, run_id in self._rows(
                "SELECT input_uuid, source_id, destination_id FROM inputs "
                "WHERE source_type = 'DATASET' AND destination_type = 'RUN'"):
            found = datasets.get(dataset_id)
            if found is not None and run_id in runs:
                runs[run_id].inputs.append(SourceDataset(
                    dataset_id, found[1], found[2], found[3] or "", found[4] or "", found[5], found[6],
                    input_tags.get(input_id, {})))

    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the number of points of each ``(run_id, key)`` series (and, on SQLite, start hashing
        the points for the verification)."""
        if self.engine.dialect.name == "sqlite":
            self._start_key_hashes()
        return {(run_id, key): int(n) for run_id, key, n in self._rows(
            "SELECT run_uuid, {key}, COUNT(*) FROM metrics GROUP BY run_uuid, {key}")}

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Series]:
        """Yield the wanted series (NaN and +-inf restored), each ordered by step, then timestamp.

        One query per series, answered from MLflow's (run_uuid, key, step) index, fetching three
        columns (a NaN point comes back as NULL).
        """
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        query = (f"SELECT CASE WHEN is_nan THEN NULL ELSE value END, timestamp, step FROM metrics "
                 f"WHERE run_uuid = {mark} AND {self._key} = {mark} ORDER BY step, timestamp")
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            for run_id, key in wanted:
                cur.execute(query, (run_id, key))
                rows = cur.fetchall()
                if rows:
                    yield (run_id, key, *_columns(rows))
            cur.close()
        finally:
            raw.close()

    def key_hashes(self) -> dict[str, int]:
        """Return the hash (point_hash.py) of every point of each key over all runs: one scan of MLflow's
        primary-key index on SQLite (started in a thread when the import reads the experiments or the
        point counts, so it runs while the import does), the fetched series elsewhere."""
        from .point_hash import by_key

        if self.engine.dialect.name == "sqlite":
            self._start_key_hashes()
            assert self._key_hashing is not None
            self._key_hashing.join()
            if isinstance(self._key_hashes, BaseException):
                raise self._key_hashes
            return dict(self._key_hashes or {})
        return by_key(self._series_hashes())

    def _start_key_hashes(self) -> None:
        """Start hashing every key's points on SQLite in a thread of its own (once)."""
        import threading

        if self._key_hashing is not None:
            return
        self._key_hashing = threading.Thread(target=self._hash_keys, name="mlflow-sql-hashes", daemon=True)
        self._key_hashing.start()

    def _hash_keys(self) -> None:
        import sqlite3

        from .point_hash import P, SQLITE_POINT

        conn = self._hash_conn = sqlite3.connect(f"file:{_sqlite_path(self.uri)}?mode=ro", uri=True,
                                                 check_same_thread=False)
        try:
            rows = conn.execute(f"SELECT key, SUM({SQLITE_POINT}) FROM metrics GROUP BY key").fetchall()
            self._key_hashes = {key: int(h) % P for key, h in rows}
        except BaseException as exc:  # handed to key_hashes(), in the caller's thread
            self._key_hashes = exc
        finally:
            self._hash_conn = None
            conn.close()

    def series_hashes(self, key: str) -> dict[str, int]:
        """Return run id -> the hash of its series of ``key``."""
        from .point_hash import P, SQLITE_POINT

        if self.engine.dialect.name == "sqlite":
            return {run_id: int(h) % P for run_id, h in self._sqlite(
                f"SELECT run_uuid, SUM({SQLITE_POINT}) FROM metrics WHERE key = ? GROUP BY run_uuid", (key,))}
        return {run_id: h for (run_id, k), h in self._series_hashes().items() if k == key}

    def _series_hashes(self) -> dict[tuple[str, str], int]:
        from .point_hash import hashes_of_series

        if self._hashes is None:
            self._hashes = hashes_of_series(self.metric_series(sorted(self.metric_counts())))
        return self._hashes

    def _sqlite(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query on a connection of its own (so another thread may run it), read-only."""
        import sqlite3

        conn = sqlite3.connect(f"file:{_sqlite_path(self.uri)}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def models(self) -> list[SourceModel]:
        """Return the registered models with their versions, tags and aliases (deleted versions left out)."""
        if "registered_models" not in self._tables_now():
            return []
        models = {name: SourceModel(name, created or 0, updated or created or 0, description)
                  for name, created, updated, description in self._rows(
                      "SELECT name, creation_time, last_updated_time, description FROM registered_models")}
        for key, value, name in self._rows("SELECT {key}, value, name FROM registered_model_tags"):
            if name in models:
                models[name].tags[key] = value or ""
        version_tags: dict[tuple[str, int], dict[str, str]] = {}
        for key, value, name, version in self._rows("SELECT {key}, value, name, version FROM model_version_tags"):
            version_tags.setdefault((name, int(version)), {})[key] = value or ""
        for row in self._rows(
                "SELECT name, version, creation_time, last_updated_time, description, user_id, current_stage, "
                "source, run_id, run_link, status FROM model_versions ORDER BY name, version"):
            name, version = row[0], int(row[1])
            if name in models:
                models[name].versions.append(SourceVersion(
                    version, row[2] or 0, row[3] or row[2] or 0, row[4], row[5], row[6] or "None", row[7] or "",
                    row[8], row[9], row[10] or "READY", version_tags.get((name, version), {})))
        for alias, version, name in self._rows("SELECT alias, version, name FROM registered_model_aliases"):
            if name in models:
                models[name].aliases[alias] = int(version)
        return list(models.values())

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return the MLflow 3 logged models (``logged_models`` and its tags and params), active and deleted."""
        if "logged_models" not in self._tables_now():
            return []
        models = {row[0]: SourceLoggedModel(
            model_id=row[0], experiment_id=str(row[1]), name=row[2] or "", artifact_location=row[3] or "",
            creation_timestamp=row[4] or 0, last_updated_timestamp=row[5] or row[4] or 0,
            status=_LOGGED_MODEL_STATUS.get(row[6], "LOGGED_MODEL_STATUS_UNSPECIFIED"), model_type=row[7] or None,
            source_run_id=row[8] or None, status_message=row[9] or None, lifecycle_stage=row[10] or "active")
            for row in self._rows(
                "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms, "
                "last_updated_timestamp_ms, status, model_type, source_run_id, status_message, lifecycle_stage "
                "FROM logged_models ORDER BY creation_timestamp_ms, model_id")}
        for table, column in (("logged_model_tags", "tags"), ("logged_model_params", "params")):
            if table in self._tables:
                kind = column[:-1]
                for model_id, key, value in self._rows(f"SELECT model_id, {kind}_key, {kind}_value FROM {table}"):
                    if model_id in models:
                        getattr(models[model_id], column)[key] = value or ""
        return list(models.values())

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return the local folder of a logged model's files, or None."""
        return local_folder(model.artifact_location, _database_folder(self.uri))

    def _tables_now(self) -> set[str]:
        self.engine  # noqa: B018 - opens and records the tables
        return self._tables

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the local folder of a run's artifacts (a path or ``file:`` URI), or None."""
        return local_folder(run.artifact_uri, _database_folder(self.uri))

    def close(self) -> None:
        """Stop the hashing thread (a dry run never waits for it) and dispose of the engine."""
        hashing, conn = self._key_hashing, self._hash_conn
        if hashing is not None:
            if conn is not None:
                conn.interrupt()
            hashing.join()
            self._key_hashing = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _columns(rows: list[tuple[Any, ...]]) -> tuple[list[float], list[int], list[int]]:
    """Split fetched (value or NULL for NaN, timestamp, step) rows into columns, restoring NaN and +-inf."""
    values, timestamps, steps = (list(column) for column in zip(*rows))
    nan = None in values
    if nan:
        values = [math.nan if x is None else x for x in values]
    if type(values[0]) is not float or not _only_floats(values):
        values = [float(x) for x in values]
    clamped = (any(abs(x) >= MAX_DOUBLE for x in values) if nan  # max() is unreliable with NaN
               else max(values) >= MAX_DOUBLE or min(values) <= -MAX_DOUBLE)
    if clamped:
        values = [unclamp(x) for x in values]
    if type(timestamps[0]) is not int:
        timestamps = [int(x) for x in timestamps]
    if type(steps[0]) is not int:
        steps = [int(x) for x in steps]
    return values, timestamps, steps


def _only_floats(values: list[Any]) -> bool:
    return set(map(type, values)) == {float}


def _database_folder(uri: str) -> str | None:
    if uri.lower().startswith("sqlite:"):
        path = uri.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        return os.path.dirname(os.path.abspath(path.split("?", 1)[0]))
    return None


def local_folder(artifact_uri: str, base: str | None = None) -> str | None:
    """Return the local folder an artifact URI names (a bare path or ``file:``), or None.

    A relative path is tried from the working folder, then from ``base``.
    """
    from fitscribe.uri import file_uri_to_path

    if not artifact_uri:
        return None
    scheme = artifact_uri.split(":", 1)[0] if "://" in artifact_uri or artifact_uri.startswith("file:") else ""
    if scheme and scheme.lower() != "file":
        return None
    path = file_uri_to_path(artifact_uri)
    if not os.path.isabs(path) and base and not os.path.isdir(path):
        path = os.path.join(base, path)
    return os.path.abspath(path)
