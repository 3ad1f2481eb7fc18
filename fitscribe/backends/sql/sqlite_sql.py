"""Prebuilt SQL for SQLite (connection.py), generated from tables.py and statements.py.

Do not edit: after changing the schema or the write statements, regenerate it with
``python -c "from fitscribe.backends.sql.engine import write_sqlite_sql; write_sqlite_sql()"``
(tests/test_store_lite.py fails until the file matches).
"""


REVISION = '0007'
"""The Alembic revision the schema below corresponds to."""

SCHEMA = (
    'CREATE TABLE experiments ( experiment_id INTEGER NOT NULL, name VARCHAR(500) NOT NULL, artifact_location TEXT NOT NULL, lifecycle_stage VARCHAR(32) NOT NULL, creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL, CONSTRAINT pk_experiments PRIMARY KEY (experiment_id), CONSTRAINT uq_experiments_name UNIQUE (name) )',
    'CREATE TABLE journals ( journal_id VARCHAR(64) NOT NULL, position BIGINT NOT NULL, CONSTRAINT pk_journals PRIMARY KEY (journal_id) )',
    'CREATE TABLE registered_models ( name VARCHAR(256) NOT NULL, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL, description TEXT, next_version INTEGER NOT NULL, CONSTRAINT pk_registered_models PRIMARY KEY (name) )',
    'CREATE TABLE registry_audit ( id INTEGER NOT NULL, timestamp BIGINT NOT NULL, user_id VARCHAR(256), action VARCHAR(40) NOT NULL, name VARCHAR(256) NOT NULL, version INTEGER, "key" VARCHAR(256), old_value TEXT, new_value TEXT, comment TEXT, CONSTRAINT pk_registry_audit PRIMARY KEY (id) )',
    'CREATE INDEX ix_registry_audit_name_version_id ON registry_audit (name, version, id)',
    'CREATE TABLE request_ids ( request_id VARCHAR(64) NOT NULL, created_time BIGINT NOT NULL, CONSTRAINT pk_request_ids PRIMARY KEY (request_id) )',
    'CREATE INDEX ix_request_ids_created_time ON request_ids (created_time)',
    'CREATE TABLE datasets ( dataset_uuid VARCHAR(32) NOT NULL, experiment_id INTEGER NOT NULL, name VARCHAR(500) NOT NULL, digest VARCHAR(36) NOT NULL, source_type VARCHAR(36) NOT NULL, source TEXT NOT NULL, schema TEXT, profile TEXT, CONSTRAINT pk_datasets PRIMARY KEY (dataset_uuid), CONSTRAINT uq_datasets_experiment_id_name_digest UNIQUE (experiment_id, name, digest), CONSTRAINT fk_datasets_experiment_id_experiments FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id) ON DELETE CASCADE )',
    'CREATE TABLE experiment_tags ( experiment_id INTEGER NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, CONSTRAINT pk_experiment_tags PRIMARY KEY (experiment_id, "key"), CONSTRAINT fk_experiment_tags_experiment_id_experiments FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id) ON DELETE CASCADE )',
    'CREATE TABLE logged_models ( model_id VARCHAR(36) NOT NULL, experiment_id INTEGER NOT NULL, name VARCHAR(500) NOT NULL, artifact_location TEXT NOT NULL, creation_timestamp_ms BIGINT NOT NULL, last_updated_timestamp_ms BIGINT NOT NULL, status INTEGER NOT NULL, lifecycle_stage VARCHAR(32) NOT NULL, model_type VARCHAR(500), source_run_id VARCHAR(32), status_message TEXT, CONSTRAINT pk_logged_models PRIMARY KEY (model_id), CONSTRAINT fk_logged_models_experiment_id_experiments FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id) ON DELETE CASCADE )',
    'CREATE INDEX ix_logged_models_experiment_id_creation_timestamp_ms ON logged_models (experiment_id, creation_timestamp_ms)',
    'CREATE TABLE model_versions ( name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, creation_time BIGINT NOT NULL, last_updated_time BIGINT NOT NULL, description TEXT, user_id VARCHAR(256), current_stage VARCHAR(20) NOT NULL, source TEXT NOT NULL, run_id VARCHAR(64), run_link TEXT, status VARCHAR(20) NOT NULL, CONSTRAINT pk_model_versions PRIMARY KEY (name, version), CONSTRAINT fk_model_versions_name_registered_models FOREIGN KEY(name) REFERENCES registered_models (name) ON DELETE CASCADE ON UPDATE CASCADE )',
    'CREATE INDEX ix_model_versions_run_id ON model_versions (run_id)',
    'CREATE TABLE registered_model_tags ( name VARCHAR(256) NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, CONSTRAINT pk_registered_model_tags PRIMARY KEY (name, "key"), CONSTRAINT fk_registered_model_tags_name_registered_models FOREIGN KEY(name) REFERENCES registered_models (name) ON DELETE CASCADE ON UPDATE CASCADE )',
    'CREATE TABLE runs ( run_uuid VARCHAR(32) NOT NULL, experiment_id INTEGER NOT NULL, name VARCHAR(250), user_id VARCHAR(256) NOT NULL, status VARCHAR(20) NOT NULL, start_time BIGINT NOT NULL, end_time BIGINT, lifecycle_stage VARCHAR(32) NOT NULL, deleted_time BIGINT, artifact_uri TEXT NOT NULL, CONSTRAINT pk_runs PRIMARY KEY (run_uuid), CONSTRAINT fk_runs_experiment_id_experiments FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id) ON DELETE CASCADE )',
    'CREATE INDEX ix_runs_experiment_id_lifecycle_stage ON runs (experiment_id, lifecycle_stage)',
    'CREATE INDEX ix_runs_experiment_id_start_time ON runs (experiment_id, start_time)',
    'CREATE TABLE inputs ( run_uuid VARCHAR(32) NOT NULL, dataset_uuid VARCHAR(32) NOT NULL, CONSTRAINT pk_inputs PRIMARY KEY (run_uuid, dataset_uuid), CONSTRAINT fk_inputs_run_uuid_runs FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid) ON DELETE CASCADE, CONSTRAINT fk_inputs_dataset_uuid_datasets FOREIGN KEY(dataset_uuid) REFERENCES datasets (dataset_uuid) ON DELETE CASCADE )',
    'CREATE TABLE latest_metrics ( run_uuid VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, value FLOAT, special SMALLINT NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL, min_value FLOAT, max_value FLOAT, CONSTRAINT pk_latest_metrics PRIMARY KEY (run_uuid, "key"), CONSTRAINT fk_latest_metrics_run_uuid_runs FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid) ON DELETE CASCADE )',
    'CREATE INDEX ix_latest_metrics_key_value ON latest_metrics ("key", value)',
    'CREATE TABLE logged_model_params ( model_id VARCHAR(36) NOT NULL, param_key VARCHAR(255) NOT NULL, param_value TEXT NOT NULL, CONSTRAINT pk_logged_model_params PRIMARY KEY (model_id, param_key), CONSTRAINT fk_logged_model_params_model_id_logged_models FOREIGN KEY(model_id) REFERENCES logged_models (model_id) ON DELETE CASCADE )',
    'CREATE TABLE logged_model_tags ( model_id VARCHAR(36) NOT NULL, tag_key VARCHAR(255) NOT NULL, tag_value TEXT NOT NULL, CONSTRAINT pk_logged_model_tags PRIMARY KEY (model_id, tag_key), CONSTRAINT fk_logged_model_tags_model_id_logged_models FOREIGN KEY(model_id) REFERENCES logged_models (model_id) ON DELETE CASCADE )',
    'CREATE TABLE metric_chunks ( id INTEGER NOT NULL, run_uuid VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, points INTEGER NOT NULL, min_step BIGINT NOT NULL, max_step BIGINT NOT NULL, step_blob BLOB NOT NULL, timestamp_blob BLOB NOT NULL, value_blob BLOB NOT NULL, CONSTRAINT pk_metric_chunks PRIMARY KEY (id), CONSTRAINT fk_metric_chunks_run_uuid_runs FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid) ON DELETE CASCADE )',
    'CREATE INDEX ix_metric_chunks_run_uuid_key_id ON metric_chunks (run_uuid, "key", id)',
    'CREATE TABLE model_version_tags ( name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, CONSTRAINT pk_model_version_tags PRIMARY KEY (name, version, "key"), CONSTRAINT fk_model_version_tags_name_model_versions FOREIGN KEY(name, version) REFERENCES model_versions (name, version) ON DELETE CASCADE ON UPDATE CASCADE )',
    'CREATE TABLE params ( run_uuid VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, CONSTRAINT pk_params PRIMARY KEY (run_uuid, "key"), CONSTRAINT fk_params_run_uuid_runs FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid) ON DELETE CASCADE )',
    'CREATE TABLE registered_model_aliases ( name VARCHAR(256) NOT NULL, alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, CONSTRAINT pk_registered_model_aliases PRIMARY KEY (name, alias), CONSTRAINT fk_registered_model_aliases_name_model_versions FOREIGN KEY(name, version) REFERENCES model_versions (name, version) ON DELETE CASCADE ON UPDATE CASCADE )',
    'CREATE INDEX ix_registered_model_aliases_name_version ON registered_model_aliases (name, version)',
    'CREATE TABLE tags ( run_uuid VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, CONSTRAINT pk_tags PRIMARY KEY (run_uuid, "key"), CONSTRAINT fk_tags_run_uuid_runs FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid) ON DELETE CASCADE )',
    'CREATE TABLE input_tags ( run_uuid VARCHAR(32) NOT NULL, dataset_uuid VARCHAR(32) NOT NULL, "key" VARCHAR(255) NOT NULL, value VARCHAR(500) NOT NULL, CONSTRAINT pk_input_tags PRIMARY KEY (run_uuid, dataset_uuid, "key"), CONSTRAINT fk_input_tags_run_uuid_inputs FOREIGN KEY(run_uuid, dataset_uuid) REFERENCES inputs (run_uuid, dataset_uuid) ON DELETE CASCADE )',
    'CREATE TABLE alembic_version ( version_num VARCHAR(32) NOT NULL, PRIMARY KEY (version_num) )',
)
"""The statements that create a new database, in order."""

SQL = {
    'experiment_by_id': 'SELECT experiments.experiment_id, experiments.name, experiments.artifact_location, experiments.lifecycle_stage, experiments.creation_time, experiments.last_update_time FROM experiments WHERE experiments.experiment_id = ?',
    'experiment_by_name': 'SELECT experiments.experiment_id, experiments.name, experiments.artifact_location, experiments.lifecycle_stage, experiments.creation_time, experiments.last_update_time FROM experiments WHERE experiments.name = ?',
    'experiment_tags': 'SELECT experiment_tags."key", experiment_tags.value FROM experiment_tags WHERE experiment_tags.experiment_id = ?',
    'insert_experiment': 'INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (?, ?, ?, ?, ?)',
    'set_artifact_location': 'UPDATE experiments SET artifact_location=? WHERE experiments.experiment_id = ?',
    'set_experiment_id': 'UPDATE experiments SET experiment_id=? WHERE experiments.experiment_id = ?',
    'upsert_experiment_tag': 'INSERT INTO experiment_tags (experiment_id, "key", value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, "key") DO UPDATE SET value = excluded.value',
    'insert_run': 'INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    'run_stage': 'SELECT runs.lifecycle_stage FROM runs WHERE runs.run_uuid = ?',
    'run_stage_locked': 'SELECT runs.lifecycle_stage FROM runs WHERE runs.run_uuid = ?',
    'run_row': 'SELECT runs.run_uuid, runs.experiment_id, runs.name, runs.user_id, runs.status, runs.start_time, runs.end_time, runs.lifecycle_stage, runs.artifact_uri FROM runs WHERE runs.run_uuid = ?',
    'update_run': 'UPDATE runs SET name=CASE WHEN ? THEN ? ELSE runs.name END, status=CASE WHEN ? THEN ? ELSE runs.status END, end_time=CASE WHEN ? THEN ? ELSE runs.end_time END WHERE runs.run_uuid = ?',
    'update_run_returning': 'UPDATE runs SET name=CASE WHEN ? THEN ? ELSE runs.name END, status=CASE WHEN ? THEN ? ELSE runs.status END, end_time=CASE WHEN ? THEN ? ELSE runs.end_time END WHERE runs.run_uuid = ? RETURNING run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri',
    'set_run_lifecycle': 'UPDATE runs SET lifecycle_stage=?, deleted_time=? WHERE runs.run_uuid = ?',
    'existing_runs': 'SELECT runs.run_uuid FROM runs WHERE runs.run_uuid IN (__[POSTCOMPILE_run_ids])',
    'tag_value': 'SELECT tags.value FROM tags WHERE tags.run_uuid = ? AND tags."key" = ?',
    'upsert_tag': 'INSERT INTO tags (run_uuid, "key", value) VALUES (?, ?, ?) ON CONFLICT (run_uuid, "key") DO UPDATE SET value = excluded.value',
    'insert_param': 'INSERT INTO params (run_uuid, "key", value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    'stored_params': 'SELECT params."key", params.value FROM params WHERE params.run_uuid = ? AND params."key" IN (__[POSTCOMPILE_keys])',
    'insert_chunk': 'INSERT INTO metric_chunks (run_uuid, "key", points, min_step, max_step, step_blob, timestamp_blob, value_blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    'metric_chunks': 'SELECT metric_chunks.step_blob, metric_chunks.timestamp_blob, metric_chunks.value_blob FROM metric_chunks WHERE metric_chunks.run_uuid = ? AND metric_chunks."key" = ? AND metric_chunks.max_step >= ? AND metric_chunks.min_step <= ? ORDER BY metric_chunks.id',
    'run_start_times': 'SELECT runs.run_uuid, runs.start_time FROM runs WHERE runs.run_uuid IN (__[POSTCOMPILE_run_ids])',
    'upsert_latest': 'INSERT INTO latest_metrics (run_uuid, "key", value, special, timestamp, step, min_value, max_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_uuid, "key") DO UPDATE SET value = CASE WHEN (excluded.step > latest_metrics.step OR excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp) THEN excluded.value ELSE latest_metrics.value END, special = CASE WHEN (excluded.step > latest_metrics.step OR excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp) THEN excluded.special ELSE latest_metrics.special END, timestamp = CASE WHEN (excluded.step > latest_metrics.step OR excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp) THEN excluded.timestamp ELSE latest_metrics.timestamp END, step = CASE WHEN (excluded.step > latest_metrics.step OR excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp) THEN excluded.step ELSE latest_metrics.step END, min_value = CASE WHEN (excluded.min_value IS NULL) THEN latest_metrics.min_value WHEN (latest_metrics.min_value IS NULL) THEN excluded.min_value WHEN (excluded.min_value < latest_metrics.min_value) THEN excluded.min_value ELSE latest_metrics.min_value END, max_value = CASE WHEN (excluded.max_value IS NULL) THEN latest_metrics.max_value WHEN (latest_metrics.max_value IS NULL) THEN excluded.max_value WHEN (excluded.max_value > latest_metrics.max_value) THEN excluded.max_value ELSE latest_metrics.max_value END',
    'journal_position': 'SELECT journals.position FROM journals WHERE journals.journal_id = ?',
    'upsert_journal': 'INSERT INTO journals (journal_id, position) VALUES (?, ?) ON CONFLICT (journal_id) DO UPDATE SET position = excluded.position',
    'delete_journal': 'DELETE FROM journals WHERE journals.journal_id = ?',
    'revision': 'SELECT alembic_version.version_num FROM alembic_version',
    'stamp_revision': 'INSERT INTO alembic_version (version_num) VALUES (?)',
}
"""Each named statement of statements.py, with ``?`` placeholders in its parameters' order."""
