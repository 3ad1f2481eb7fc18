"""A fitscribe SQL store read as an import source: what ``fitscribe export`` writes into a bundle.

It returns the same entities as the MLflow readers (source.py), from the store's tables through
``backends/sql/bulk_import.py`` (logged models through the store's own ``get_logged_model``), so a store can be exported to a bundle and a bundle imported into
another store (SQLite, PostgreSQL, MariaDB) with the same importer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

from fitscribe.uri import redact

from .mlflow_sql import local_folder
from .source import Series, SeriesHashes, SourceDataset, SourceExperiment, SourceLoggedModel, SourceModel, SourceRun, SourceVersion

if TYPE_CHECKING:
    from fitscribe.backends.sql.bulk_import import BulkImporter

__all__ = ["FitscribeSource"]


class FitscribeSource(SeriesHashes):
    """Read a fitscribe SQL store (never written).

    Args:
        bulk: The store's bulk reader/writer.
    """

    def __init__(self, bulk: BulkImporter) -> None:
        self.bulk = bulk
        self.description = redact(bulk.store.uri)
        self._state = bulk.state()

    def experiments(self) -> list[SourceExperiment]:
        """Return every experiment with its tags."""
        tags = self._state.experiment_tags
        return [SourceExperiment(str(i), name, location, stage, created, updated, dict(tags.get(int(i), {})))
                for i, name, location, stage, created, updated in self.bulk.experiment_rows()]

    def runs(self) -> list[SourceRun]:
        """Return every run with params, tags and dataset inputs."""
        inputs = self.bulk.run_inputs()
        found = []
        for run_id, row in self._state.runs.items():
            run = SourceRun(run_id, str(row["experiment_id"]), row["name"], row["user_id"], row["status"],
                            row["start_time"], row["end_time"], row["lifecycle_stage"], row["deleted_time"],
                            row["artifact_uri"], dict(self._state.params.get(run_id, {})),
                            dict(self._state.tags.get(run_id, {})))
            run.inputs = [SourceDataset(*item) for item in inputs.get(run_id, [])]
            found.append(run)
        return sorted(found, key=lambda r: (r.start_time, r.run_id))

    def metric_counts(self) -> dict[tuple[str, str], int]:
        """Return the number of points of each series."""
        return dict(self._state.metric_counts)

    def metric_series(self, wanted: Sequence[tuple[str, str]]) -> Iterator[Series]:
        """Yield the wanted series, ordered by step, then timestamp (chunks read for 50 runs at a time)."""
        keys: dict[str, set[str]] = {}
        for run_id, key in wanted:
            keys.setdefault(run_id, set()).add(key)
        for series in self.bulk.series_of_runs(list(keys)):
            if series[1] in keys[series[0]]:
                yield series

    def models(self) -> list[SourceModel]:
        """Return the registered models with versions, tags and aliases."""
        found = []
        for name, m in self.bulk.models().items():
            model = SourceModel(name, m["creation_time"], m["last_updated_time"], m["description"], dict(m["tags"]),
                                dict(m["aliases"]))
            for number, v in sorted(m["versions"].items()):
                model.versions.append(SourceVersion(
                    number, v["creation_time"], v["last_updated_time"], v["description"], v["user_id"],
                    v["current_stage"], v["source"], v["run_id"], v["run_link"], v["status"], dict(v["tags"])))
            found.append(model)
        return found

    def logged_models(self) -> list[SourceLoggedModel]:
        """Return every logged model, active and deleted, with its tags and params (oldest first)."""
        import sqlalchemy as sa

        from fitscribe.backends.sql import tables as t

        lm = t.logged_models.c
        with self.bulk.store.sql_read(flush=False) as w:
            ids = [r[0] for r in w.sa.execute(sa.select(lm.model_id).order_by(lm.creation_timestamp_ms, lm.model_id))]
        return [self.bulk.store.get_logged_model(model_id, allow_deleted=True) for model_id in ids]

    def logged_model_folder(self, model: SourceLoggedModel) -> str | None:
        """Return the local folder of a logged model's files, or None (not on this machine)."""
        return local_folder(model.artifact_location)

    def _all_series_hashes(self) -> dict[tuple[str, str], int]:
        """Return (run id, key) -> point hash of these runs' series, read from their chunks."""
        from .verify import destination_hashes

        return destination_hashes(self.bulk, set(self._state.runs))

    def artifact_folder(self, run: SourceRun) -> str | None:
        """Return the local folder of a run's artifacts, or None (not on this machine)."""
        return local_folder(run.artifact_uri)

    def close(self) -> None:
        """Close the store."""
        self.bulk.store.close()
