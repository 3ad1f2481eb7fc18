"""Importing the model registry: registered models, versions (with stages), tags, aliases, descriptions.

Version numbers are kept, so ``models:/name/3`` means the same version after the import. A
version whose ``source`` lies under its run's artifacts is pointed at the run's copy. Versions
MLflow keeps as ``Deleted_Internal`` (so numbers are never reused) are not imported, but the next
version number still comes after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitscribe.backends.sql.bulk_import import BulkImporter

    from .plan import ImportReport
    from .source import Source, SourceModel, SourceVersion

__all__ = ["import_models", "rewrite_source", "model_pending", "DELETED_STAGE"]

DELETED_STAGE = "Deleted_Internal"
"""The stage MLflow gives a deleted version it keeps (so its number is never reused); such versions are not imported."""


def rewrite_source(source: str, run_id: str | None, artifact_uris: dict[str, tuple[str, str]]) -> str:
    """Return a version's source pointed at the imported copy of its run's artifacts, if it was there.

    >>> rewrite_source("/old/1/r/artifacts/model", "r", {"r": ("/old/1/r/artifacts", "/new/r/artifacts")})
    '/new/r/artifacts/model'
    """
    found = artifact_uris.get(run_id or "")
    if not found:
        return source
    old, new = (uri.rstrip("/") for uri in found)
    for prefix in (old, "file://" + old if old.startswith("/") else old):
        if source == prefix or source.startswith(prefix + "/"):
            return new + source[len(prefix):]
    return source


def import_models(source: Source, dest: BulkImporter, report: ImportReport,
                  artifact_uris: dict[str, tuple[str, str]]) -> None:
    """Import every registered model of ``source`` not yet (or not fully) in ``dest``."""
    existing = dest.models()
    for model in source.models():
        stored = existing.get(model.name)
        _import_model(model, stored, dest, report, artifact_uris)


def _import_model(model: SourceModel, stored: dict[str, Any] | None, dest: BulkImporter, report: ImportReport,
                  artifact_uris: dict[str, tuple[str, str]]) -> None:
    changes = _changes(model, stored)
    if not (stored is None or any(changes.values())):
        _update_versions(model, stored["versions"], dest, report)
        return
    new_versions = [_version_row(model.name, v, artifact_uris) for v in changes["new_versions"]]
    report.models_added += stored is None
    report.models_updated += stored is not None
    report.versions_added += len(new_versions)
    if not report.dry_run:
        row = {"name": model.name, "creation_time": model.creation_time,
               "last_updated_time": model.last_updated_time, "description": model.description}
        dest.write_model(row, new_versions, changes["tags"], changes["aliases"], changes["version_tags"],
                         exists=stored is not None,
                         next_version=max((v.version for v in model.versions), default=0) + 1)
    _update_versions(model, stored["versions"] if stored else {}, dest, report)


def _changes(model: SourceModel, stored: dict[str, Any] | None) -> dict[str, Any]:
    """What the import would write of ``model`` besides version stages and descriptions: new versions,
    changed tags, aliases, version tags, description, a next version number behind the source's."""
    have = stored["versions"] if stored else {}
    live = [v for v in model.versions if v.current_stage != DELETED_STAGE]
    numbers = {v.version for v in live}
    return {
        "new_versions": [v for v in live if v.version not in have],
        "tags": {k: v for k, v in model.tags.items() if not stored or stored["tags"].get(k) != v},
        "aliases": {a: n for a, n in model.aliases.items()
                    if n in numbers and (not stored or stored["aliases"].get(a) != n)},
        "version_tags": [(v.version, k, val) for v in live for k, val in v.tags.items()
                         if have.get(v.version, {}).get("tags", {}).get(k) != val],
        "described": stored is not None and stored["description"] != model.description,
        "behind": stored is not None and _next_version_behind(model, stored),
    }


def model_pending(model: SourceModel, stored: dict[str, Any] | None) -> bool:
    """True if importing ``model`` would change the destination's copy ``stored`` (an entry of
    ``BulkImporter.models()``, or None when it has none): the rule ``fitscribe push`` sends by.

    >>> from fitscribe.migrate.source import SourceModel
    >>> model_pending(SourceModel("m", 1, 1, None, aliases={}), None)
    True
    """
    if stored is None:
        return True
    if any(_changes(model, stored).values()):
        return True
    return any(_version_changes(v, stored["versions"].get(v.version)) for v in model.versions)


def _next_version_behind(model: SourceModel, stored: dict[str, Any]) -> bool:
    """True if the destination could hand out a version number the source used (a deleted one)."""
    return bool(model.versions) and stored.get("next_version", 0) <= max(v.version for v in model.versions)


def _update_versions(model: SourceModel, have: dict[int, dict[str, Any]], dest: BulkImporter,
                     report: ImportReport) -> None:
    """Bring the stage and description of versions imported before up to date."""
    for v in model.versions:
        changed = _version_changes(v, have.get(v.version))
        if changed:
            report.versions_updated += 1
            if not report.dry_run:
                dest.update_version(model.name, v.version, changed)


def _version_changes(v: SourceVersion, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The stage and description of an imported version that differ from the source's."""
    if stored is None or v.current_stage == DELETED_STAGE:
        return {}
    return {k: val for k, val in (("current_stage", v.current_stage), ("description", v.description))
            if stored[k] != val}


def _version_row(name: str, v: SourceVersion, artifact_uris: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {"name": name, "version": v.version, "creation_time": v.creation_time,
            "last_updated_time": v.last_updated_time, "description": v.description, "user_id": v.user_id,
            "current_stage": v.current_stage, "source": rewrite_source(v.source, v.run_id, artifact_uris),
            "run_id": v.run_id or None, "run_link": v.run_link or None, "status": v.status}
