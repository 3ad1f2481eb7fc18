"""What a destination holds of the entities an import or a push concerns, in one JSON-able shape.

:func:`describe` is the answer of a server's ``/api/2.0/fitscribe/import/compare`` and what the
closing verification of a local import reads, so ``fitscribe push`` and ``fitscribe import`` decide
and verify by the same rules (``verify.rows``)::

    {"runs": {run_id: {"digest", "params", "tags", "points", "artifacts": {path: size} | null,
               "values": {key: point hash} (when asked)}},
     "experiments": {name: id},
     "experiment_states": {name: {"lifecycle_stage", "tags"}},
     "models": {name: [version numbers]},
     "registry": {name: {"description", "next_version", "tags", "aliases",
                         "versions": {number: {"current_stage", "description", "tags"}}}},
     "logged_models": {model_id: {LoggedModel's fields..., "files": {path: size} | null}}}

Runs, models and logged models the destination lacks are absent. A server of an older version
answers only the first, third and fourth keys; a client then sends every experiment, registered
model and logged model again (the import writes only what changed).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, Sequence


if TYPE_CHECKING:
    from fitscribe.backends.sql.bulk_import import BulkImporter
    from fitscribe.entities.logged_model import LoggedModel

    from .source import SourceRun

__all__ = ["describe", "run_digest", "source_digest", "stored_digest", "stored_model", "stored_logged_model"]

_INFO = ("name", "user_id", "status", "start_time", "end_time", "lifecycle_stage")
Files = Callable[[str], "dict[str, int] | None"]


def run_digest(info: tuple[Any, ...], params: dict[str, str], tags: dict[str, str], series: dict[str, int]) -> str:
    """Return the sha256 of a run's fields, params, tags and point count per metric key."""
    import hashlib
    import json

    body = json.dumps([list(info), sorted(params.items()), sorted(tags.items()), sorted(series.items())],
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def source_digest(run: SourceRun, series: dict[str, int]) -> str:
    """Return the digest of a source's run (as :func:`stored_digest` computes it for the destination)."""
    return run_digest(tuple(getattr(run, c) for c in _INFO), run.params, run.tags, series)


def stored_digest(row: dict[str, Any], params: dict[str, str], tags: dict[str, str], series: dict[str, int]) -> str:
    """Return the digest of a stored run (a row of ``BulkImporter.state().runs``)."""
    return run_digest(tuple(row[c] for c in _INFO), params, tags, series)


def describe(bulk: BulkImporter, run_ids: Sequence[str], experiments: Sequence[str], models: Sequence[str],
             logged_models: Sequence[str] = (), files: Files | None = None, read_all: bool = False,
             values: bool = False) -> dict[str, Any]:
    """Return what ``bulk``'s store holds of these runs, experiments (names), registered models (names)
    and logged models (ids), in the shape of the module docstring.

    Args:
        bulk: The destination's bulk reader.
        run_ids: The runs asked about.
        experiments: The experiment names asked about.
        models: The registered model names asked about.
        logged_models: The logged model ids asked about.
        files: Returns the files under an artifact URI with their sizes, or None if it cannot list
            them; without it, ``artifacts`` and ``files`` are None.
        read_all: Read every run's state in a few whole-table queries rather than these runs' by
            ``IN`` lists (quicker when they are most of the store: the verification of an import).
        values: Add each run's ``values``: metric key -> the point hash of its series
            (``point_hash.py``), read from these runs' stored chunks.
    """
    held = bulk.state() if read_all else bulk.state(run_ids)
    series: dict[str, dict[str, int]] = {}
    wanted = set(run_ids)
    for (run_id, key), n in held.metric_counts.items():
        if run_id in wanted:
            series.setdefault(run_id, {})[key] = n
    runs: dict[str, Any] = {}
    for run_id in run_ids:
        row = held.runs.get(run_id)
        if row is None:
            continue
        params, tags, mine = held.params.get(run_id, {}), held.tags.get(run_id, {}), series.get(run_id, {})
        runs[run_id] = {"digest": stored_digest(row, params, tags, mine), "params": len(params), "tags": len(tags),
                        "points": sum(mine.values()), "artifacts": files(row["artifact_uri"]) if files else None}
    if values:
        from .verify import destination_hashes

        for (run_id, key), h in destination_hashes(bulk, set(runs), scoped=True).items():
            runs[run_id].setdefault("values", {})[key] = h
        for entry in runs.values():
            entry.setdefault("values", {})
    names = set(experiments)
    found = {name: i for i, (name, _, _) in held.experiments.items() if name in names}
    stored_models = bulk.models() if models else {}
    return {
        "runs": runs,
        "experiments": {name: str(i) for name, i in found.items()},
        "experiment_states": {name: {"lifecycle_stage": held.experiments[i][2],
                                     "tags": held.experiment_tags.get(i, {})} for name, i in found.items()},
        "models": {name: sorted(stored_models[name]["versions"]) for name in models if name in stored_models},
        "registry": {name: _registry_entry(stored_models[name]) for name in models if name in stored_models},
        "logged_models": _logged_models(bulk, logged_models, files),
    }


def _registry_entry(stored: dict[str, Any]) -> dict[str, Any]:
    return {"description": stored["description"], "next_version": stored["next_version"], "tags": stored["tags"],
            "aliases": stored["aliases"],
            "versions": {str(n): {"current_stage": v["current_stage"], "description": v["description"],
                                  "tags": v["tags"]} for n, v in stored["versions"].items()}}


def _logged_models(bulk: BulkImporter, ids: Sequence[str], files: Files | None) -> dict[str, Any]:
    from fitscribe.errors import FitscribeError

    found: dict[str, Any] = {}
    for model_id in ids:
        try:
            model = bulk.store.get_logged_model(model_id, allow_deleted=True)
        except FitscribeError:  # absent, or an id this store cannot hold
            continue
        found[model_id] = {**asdict(model), "files": files(model.artifact_location) if files else None}
    return found


def stored_model(entry: dict[str, Any]) -> dict[str, Any]:
    """Return a ``registry`` entry of :func:`describe`'s answer as ``BulkImporter.models()`` has it
    (version numbers as ints), for ``registry.model_pending``."""
    return {**entry, "versions": {int(n): v for n, v in entry["versions"].items()}}


def stored_logged_model(entry: dict[str, Any]) -> LoggedModel:
    """Return a ``logged_models`` entry of :func:`describe`'s answer as the entity."""
    from fitscribe.entities.logged_model import LoggedModel

    return LoggedModel(**{k: v for k, v in entry.items() if k != "files"})
