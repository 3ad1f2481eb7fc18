"""The SQL schema, as SQLAlchemy Core tables shared by SQLite, PostgreSQL and MySQL/MariaDB.

This is the current shape of what the Alembic revisions in ``migrations/versions`` create: a change
needs a new revision and a regenerated ``sqlite_sql.py`` (engine.py). ``latest_metrics`` stores a
float plus a ``special`` code (rows.py) so NaN and +-inf survive on every database (MySQL stores
neither). The registry's tables hang off ``registered_models.name`` with ``ON UPDATE CASCADE``, so a
rename is one UPDATE; incrementing ``next_version`` (numbers are never reused) first serialises
concurrent version creation.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from .rows import MAX_DOUBLE, SPECIAL_FINITE, SPECIAL_NAN, SPECIAL_NEG_INF, SPECIAL_POS_INF

__all__ = [
    "SCHEMA_REVISION", "Str", "LongText", "BigId", "Double", "Blob", "metadata", "experiments", "experiment_tags",
    "runs", "tags", "params", "metric_chunks", "latest_metrics", "datasets", "inputs", "input_tags", "journals",
    "request_ids", "registered_models", "registered_model_tags", "model_versions", "model_version_tags",
    "registered_model_aliases", "registry_audit", "logged_models", "logged_model_tags", "logged_model_params",
    "MAX_DOUBLE", "SPECIAL_FINITE", "SPECIAL_NAN", "SPECIAL_POS_INF", "SPECIAL_NEG_INF",
]

SCHEMA_REVISION = "0007"
"""The Alembic revision these tables correspond to (a new database is stamped with it)."""

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An autoincrementing 64-bit key that is SQLite's rowid on SQLite (fast inserts there).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def Str(length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR compared case-sensitively everywhere (MySQL's default collation ignores case)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")
Double = sa.Float(precision=53).with_variant(sa.Double(), "mysql", "mariadb", "postgresql")
# BLOB / BYTEA; LONGBLOB on MySQL, whose BLOB holds only 64 KiB.
Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def _owner(name: str, kind: sa.types.TypeEngine[object] | type, target: str, **options: object) -> sa.Column[object]:
    """A column referring to ``target`` (``table.column``); the row goes when the target goes."""
    cascade = {"onupdate": "CASCADE"} if target == "registered_models.name" else {}
    return sa.Column(name, kind, sa.ForeignKey(target, ondelete="CASCADE", **cascade), **options)  # type: ignore[arg-type]


def _run_uuid(**options: object) -> sa.Column[object]:
    return _owner("run_uuid", Str(32), "runs.run_uuid", **options)


def _experiment_id(**options: object) -> sa.Column[object]:
    return _owner("experiment_id", sa.Integer, "experiments.experiment_id", **options)


def _key_values(name: str, *owner: sa.SchemaItem, prefix: str = "", key_length: int = 250) -> sa.Table:
    """A table of key/value pairs (tags, params) of the owner, one value per key."""
    return sa.Table(name, metadata, *owner, sa.Column(f"{prefix}key", Str(key_length), primary_key=True),
                    sa.Column(f"{prefix}value", LongText, nullable=False))


experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", Str(500), nullable=False, unique=True),
    sa.Column("artifact_location", LongText, nullable=False),
    sa.Column("lifecycle_stage", Str(32), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

experiment_tags = _key_values("experiment_tags", _experiment_id(primary_key=True))

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_uuid", Str(32), primary_key=True),
    _experiment_id(nullable=False),
    sa.Column("name", Str(250), nullable=True),
    sa.Column("user_id", Str(256), nullable=False),
    sa.Column("status", Str(20), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", Str(32), nullable=False),
    sa.Column("deleted_time", sa.BigInteger, nullable=True),
    sa.Column("artifact_uri", LongText, nullable=False),
    sa.Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
    sa.Index("ix_runs_experiment_id_lifecycle_stage", "experiment_id", "lifecycle_stage"),  # counts
)

tags = _key_values("tags", _run_uuid(primary_key=True))
params = _key_values("params", _run_uuid(primary_key=True))

# The history of each metric: one row per (run, key) series and write, holding the points as packed
# arrays (see chunks.py); ``points`` is their count, ``min_step``/``max_step`` bound their steps.
metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _run_uuid(nullable=False),
    sa.Column("key", Str(250), nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("min_step", sa.BigInteger, nullable=False),
    sa.Column("max_step", sa.BigInteger, nullable=False),
    sa.Column("step_blob", Blob, nullable=False),
    sa.Column("timestamp_blob", Blob, nullable=False),
    sa.Column("value_blob", Blob, nullable=False),
    sa.Index("ix_metric_chunks_run_uuid_key_id", "run_uuid", "key", "id"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    _run_uuid(primary_key=True),
    sa.Column("key", Str(250), primary_key=True),
    sa.Column("value", Double, nullable=True),
    sa.Column("special", sa.SmallInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("min_value", Double, nullable=True),
    sa.Column("max_value", Double, nullable=True),
    # sorting runs by a metric's last value reads this in order (run_query.py); none on min/max:
    # two more indexes here halve the rate of new metric rows on SQLite
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_uuid", Str(32), primary_key=True),
    _experiment_id(nullable=False),
    sa.Column("name", Str(500), nullable=False),
    sa.Column("digest", Str(36), nullable=False),
    sa.Column("source_type", Str(36), nullable=False),
    sa.Column("source", LongText, nullable=False),
    sa.Column("schema", LongText, nullable=True),
    sa.Column("profile", LongText, nullable=True),
    sa.UniqueConstraint("experiment_id", "name", "digest"),
)

inputs = sa.Table(
    "inputs", metadata, _run_uuid(primary_key=True),
    _owner("dataset_uuid", Str(32), "datasets.dataset_uuid", primary_key=True),
)

input_tags = sa.Table(
    "input_tags",
    metadata,
    sa.Column("run_uuid", Str(32), primary_key=True),
    sa.Column("dataset_uuid", Str(32), primary_key=True),
    sa.Column("key", Str(255), primary_key=True),
    sa.Column("value", Str(500), nullable=False),
    sa.ForeignKeyConstraint(
        ["run_uuid", "dataset_uuid"], ["inputs.run_uuid", "inputs.dataset_uuid"], ondelete="CASCADE"
    ),
)

# How far each per-process metric journal of an embedded store has been copied into this database
# (see journal.py); updated in the same transaction as the points, so a replay never duplicates.
journals = sa.Table(
    "journals",
    metadata,
    sa.Column("journal_id", Str(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

# Ids of log-batch requests already applied (revision 0004), recorded in the batch's transaction so
# a client retrying a request whose answer it lost is answered without applying it twice (see
# request_ids.py); rows older than a few days are pruned.
request_ids = sa.Table(
    "request_ids",
    metadata,
    sa.Column("request_id", Str(64), primary_key=True),
    sa.Column("created_time", sa.BigInteger, nullable=False),
    sa.Index("ix_request_ids_created_time", "created_time"),
)

# -- model registry (revision 0002) -----------------------------------------------------------------
registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", Str(256), primary_key=True),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_updated_time", sa.BigInteger, nullable=False),
    sa.Column("description", LongText, nullable=True),
    sa.Column("next_version", sa.Integer, nullable=False),
)


def _version_of() -> sa.ForeignKeyConstraint:
    """(name, version) referring to a model version: the row follows it (renamed) and goes with it."""
    return sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"],
                                   ondelete="CASCADE", onupdate="CASCADE")


registered_model_tags = _key_values(
    "registered_model_tags", _owner("name", Str(256), "registered_models.name", primary_key=True))

model_versions = sa.Table(
    "model_versions",
    metadata,
    _owner("name", Str(256), "registered_models.name", primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_updated_time", sa.BigInteger, nullable=False),
    sa.Column("description", LongText, nullable=True),
    sa.Column("user_id", Str(256), nullable=True),
    sa.Column("current_stage", Str(20), nullable=False),
    sa.Column("source", LongText, nullable=False),
    sa.Column("run_id", Str(64), nullable=True),
    sa.Column("run_link", LongText, nullable=True),
    sa.Column("status", Str(20), nullable=False),
    sa.Index("ix_model_versions_run_id", "run_id"),
)

model_version_tags = _key_values(
    "model_version_tags", sa.Column("name", Str(256), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False), _version_of())

# An alias points at an existing version: deleting the version removes its aliases.
registered_model_aliases = sa.Table(
    "registered_model_aliases",
    metadata,
    sa.Column("name", Str(256), primary_key=True),
    sa.Column("alias", Str(256), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    _version_of(),
    sa.Index("ix_registered_model_aliases_name_version", "name", "version"),
)

# The registry's audit trail (revision 0006): one row per change, written in the change's own
# transaction; no foreign keys, so the history outlives a deleted or renamed model.
registry_audit = sa.Table(
    "registry_audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("user_id", Str(256), nullable=True),
    sa.Column("action", Str(40), nullable=False),
    sa.Column("name", Str(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("key", Str(256), nullable=True),
    sa.Column("old_value", LongText, nullable=True),
    sa.Column("new_value", LongText, nullable=True),
    sa.Column("comment", LongText, nullable=True),
    sa.Index("ix_registry_audit_name_version_id", "name", "version", "id"),
)

# -- MLflow 3 logged models (revision 0007; logged_models.py) ---------------------------------------
# MLflow's tables and column names, so an MLflow database maps onto them one to one. ``status`` is
# MLflow's enum number (1 PENDING, 2 READY, 3 UPLOAD_FAILED); tags and params go with their model.
logged_models = sa.Table(
    "logged_models",
    metadata,
    sa.Column("model_id", Str(36), primary_key=True),
    _experiment_id(nullable=False),
    sa.Column("name", Str(500), nullable=False),
    sa.Column("artifact_location", LongText, nullable=False),
    sa.Column("creation_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("last_updated_timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("lifecycle_stage", Str(32), nullable=False),
    sa.Column("model_type", Str(500), nullable=True),
    sa.Column("source_run_id", Str(32), nullable=True),
    sa.Column("status_message", LongText, nullable=True),
    sa.Index("ix_logged_models_experiment_id_creation_timestamp_ms", "experiment_id", "creation_timestamp_ms"),
)

logged_model_tags = _key_values("logged_model_tags", _owner("model_id", Str(36), "logged_models.model_id", primary_key=True),
                                prefix="tag_", key_length=255)
logged_model_params = _key_values("logged_model_params", _owner("model_id", Str(36), "logged_models.model_id",
                                                                primary_key=True), prefix="param_", key_length=255)
