"""Importing MLflow 3 logged models: the same model ids, names, status, source run, tags, params and files.

A logged model (``models:/m-...``) is created in the destination with its id and times kept
(``TrackingStore.create_logged_model``), in the experiment its source experiment maps to, with its
files copied under the destination's ``<experiment location>/models/<id>/artifacts`` (or, with
``--keep-artifact-location``, pointing at them where they are). A model imported before gets only
what changed (status, tags, params); a model the source deleted is imported, then deleted. Every
source has them (MLflow's stores and servers, fitscribe stores, bundles of schema version 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .source import HasLoggedModels, RemoteArtifacts

if TYPE_CHECKING:
    from fitscribe.backends.base import TrackingStore
    from fitscribe.entities.logged_model import LoggedModel

    from .plan import ImportReport
    from .source import Source, SourceLoggedModel

__all__ = ["import_logged_models", "logged_model_pending"]


def import_logged_models(source: Source, store: TrackingStore, report: ImportReport, exp_map: dict[str, int],
                         keep_artifact_location: bool = False, open_artifacts: Any = None) -> None:
    """Import every logged model of ``source`` whose experiment was imported, and its files.

    Args:
        source: The source read.
        store: The destination's tracking store.
        report: Counts what was (or, in a dry run, would be) added and updated.
        exp_map: Source experiment id -> destination experiment id.
        keep_artifact_location: Leave the files where they are; the model points at them.
        open_artifacts: Returns the artifact store of a destination URI (default ``get_artifact_store``;
            a server passes its own, for ``mlflow-artifacts:`` locations).
    """
    if not isinstance(source, HasLoggedModels):
        return
    for model in source.logged_models():
        if model.experiment_id not in exp_map:
            continue
        stored = _stored(store, model.model_id)
        if stored is None:
            report.logged_models_added += 1
            if report.dry_run:
                continue
            stored = store.create_logged_model(
                str(exp_map[model.experiment_id]), model.name, model_id=model.model_id,
                source_run_id=model.source_run_id, model_type=model.model_type, params=model.params, tags=model.tags,
                status=model.status, status_message=model.status_message,
                artifact_location=model.artifact_location if keep_artifact_location else None,
                creation_timestamp=model.creation_timestamp, last_updated_timestamp=model.last_updated_timestamp)
        elif stored.lifecycle_stage == "active":
            _update(model, stored, store, report)
        if not report.dry_run and not keep_artifact_location and stored.artifact_location != model.artifact_location:
            _copy_files(source, model, stored.artifact_location, report, open_artifacts)
        if not report.dry_run and model.lifecycle_stage == "deleted" and stored.lifecycle_stage == "active":
            store.delete_logged_model(model.model_id)


def _stored(store: TrackingStore, model_id: str) -> LoggedModel | None:
    from fitscribe.errors import NotFoundError

    try:
        return store.get_logged_model(model_id, allow_deleted=True)
    except NotFoundError:
        return None


def _changes(model: SourceLoggedModel, stored: LoggedModel) -> tuple[dict[str, str], dict[str, str], str | None]:
    """The tags, params and status of ``model`` that the stored copy lacks or holds otherwise."""
    tags = {k: v for k, v in model.tags.items() if stored.tags.get(k) != v}
    params = {k: v for k, v in model.params.items() if stored.params.get(k) != v}
    return tags, params, model.status if model.status != stored.status else None


def logged_model_pending(model: SourceLoggedModel, stored: LoggedModel | None) -> bool:
    """True if importing ``model`` would change the destination's copy ``stored`` (None: it has none):
    the rule ``fitscribe push`` sends by. A model deleted there is left alone, as the import does."""
    if stored is None:
        return True
    if stored.lifecycle_stage != "active":
        return False
    return model.lifecycle_stage == "deleted" or any(_changes(model, stored))


def _update(model: SourceLoggedModel, stored: LoggedModel, store: TrackingStore, report: ImportReport) -> None:
    tags, params, status = _changes(model, stored)
    if tags or params or status:
        report.logged_models_updated += 1
        if not report.dry_run:
            store.update_logged_model(model.model_id, status=status, tags=tags, params=params)


def _copy_files(source: Source, model: SourceLoggedModel, dest_uri: str, report: ImportReport,
                open_artifacts: Any = None) -> None:
    from .artifacts import copy_run_artifacts

    if isinstance(source, RemoteArtifacts):
        files, size = source.copy_logged_model_artifacts(model, dest_uri)
    else:
        assert isinstance(source, HasLoggedModels)
        folder = source.logged_model_folder(model)
        if folder is None:
            report.skipped.append(f"files of logged model {model.model_id}: {model.artifact_location!r} is not a "
                                  "local folder")
            return
        files, size = copy_run_artifacts(folder, dest_uri, open_artifacts)
    report.artifact_files += files
    report.artifact_bytes += size
