"""fitscribe extension endpoints: import a bundle into this server's store, keeping run ids.

MLflow's REST API cannot create a run with a given id, so ``fitscribe push`` and ``fitscribe import
... --to http://server`` (``fitscribe.migrate.push``) use two endpoints of their own:

- ``POST /api/2.0/fitscribe/import/compare``, JSON ``{"run_ids": [...], "experiments": [names],
  "models": [names], "logged_models": [ids], "values": bool}``: what this server holds of them (runs,
  with their series' point hashes if ``values``; experiments
  with their stage and tags; registered models with their versions, aliases and tags; logged models
  with their files; the shape is ``fitscribe.migrate.held``'s; what it lacks is absent);
- ``POST /api/2.0/fitscribe/import``, body an uncompressed ``.tar`` bundle (``fitscribe export``'s
  format; ``Content-Type: application/x-tar``): checked whole (``migrate/bundle_check.py``; a
  malformed bundle is a 400 and nothing is written), then imported by the same idempotent importer as
  ``fitscribe import bundle`` into the server's own store, artifacts copied into its artifact
  destination (``mlflow-artifacts:`` locations when it serves artifacts). Run ids, times and metric
  histories are kept; experiments are matched by name, their ids kept where free and otherwise
  mapped. Answers ``{"report": {...counts, "experiment_ids": {bundle id: server id}}}``; the
  client verifies with a closing compare (one read of the store's state per request, not two).

Permissions: the server's identities (``server/auth.py``) are read-only or read-write, with no
per-experiment permissions; both endpoints are POSTs not marked read-only, so the security middleware
answers 403 to a read-only identity before the handler runs: importing needs the read-write role.
The body limit is that of artifact uploads (``--max-upload-mb``), since a bundle carries artifacts.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fitscribe.errors import InvalidValueError
from fitscribe.migrate.push import COMPARE_PATH, IMPORT_PATH
from fitscribe.server.errors import Conflict, NotSupported, error_response, hide_paths
from fitscribe.server.params import parse_json_body
from fitscribe.server.state import ServerState

if TYPE_CHECKING:
    from fitscribe.backends import ArtifactStore

__all__ = ["import_routes", "IMPORT_PATH", "COMPARE_PATH", "compare", "import_bundle_file"]

_MAX_IDS = 100_000
_TAR_TYPES = ("application/x-tar", "application/octet-stream", "application/tar")


def import_routes() -> list[Route]:
    """Return the routes of the two import endpoints."""
    return [Route(COMPARE_PATH, _compare_endpoint, methods=["POST"]),
            Route(IMPORT_PATH, _import_endpoint, methods=["POST"])]


async def _compare_endpoint(request: Request) -> Response:
    """Answer what the server holds of the runs and models named in the JSON body."""
    try:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise InvalidValueError(f"Content-Type must be 'application/json' (got {content_type or 'missing'}).")
        body = parse_json_body(await request.body())
        result = await run_in_threadpool(compare, request.app.state.server, body)
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception as exc:  # answered through the error table; bugs are logged there
        return error_response(exc)
    return JSONResponse(result)


async def _import_endpoint(request: Request) -> Response:
    """Receive a bundle into a temporary file, then import it."""
    try:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type not in _TAR_TYPES:
            raise InvalidValueError(f"Content-Type must be 'application/x-tar' (got {content_type or 'missing'}): "
                                    "send the .tar that `fitscribe export -o x.tar` writes.")
        with tempfile.TemporaryDirectory(prefix="fitscribe-import-") as folder:
            path = os.path.join(folder, "bundle.tar")
            with open(path, "wb") as handle:
                async for chunk in request.stream():
                    if chunk:
                        await run_in_threadpool(handle.write, chunk)
            result = await run_in_threadpool(import_bundle_file, request.app.state.server, path)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening any more
    except Exception as exc:  # answered through the error table; bugs are logged there
        return error_response(exc)
    return JSONResponse(result)


def _strings(body: dict[str, Any], name: str) -> list[str]:
    values = body.get(name, [])
    if not isinstance(values, list) or len(values) > _MAX_IDS or not all(isinstance(x, str) for x in values):
        raise InvalidValueError(f"{name!r} must be a list of at most {_MAX_IDS:,} strings.")
    return values


def _bulk(state: ServerState) -> Any:
    bulk = state.tracking.bulk_importer()
    if bulk is None:
        raise NotSupported("This server's tracking store cannot import bundles (a SQL store can).")
    return bulk


def compare(state: ServerState, body: Any) -> dict[str, Any]:
    """Return what the server holds of the runs, experiments, models and logged models named in ``body``
    (``fitscribe.migrate.held.describe``'s answer).

    Raises:
        InvalidValueError: ``body`` is not an object of lists of strings.
    """
    from fitscribe.migrate.held import describe

    if not isinstance(body, dict):
        raise InvalidValueError("The body must be a JSON object with 'run_ids', 'experiments' and 'models'.")
    run_ids, names, model_names, logged = (_strings(body, n) for n in ("run_ids", "experiments", "models",
                                                                       "logged_models"))
    values = body.get("values", False)
    if not isinstance(values, bool):
        raise InvalidValueError("'values' must be true or false.")
    return describe(_bulk(state), run_ids, names, model_names, logged,
                    files=lambda uri: _artifact_files(state, uri), values=values)


def _artifact_files(state: ServerState, uri: str) -> dict[str, int] | None:
    """Return every file under a run's artifact root with its size, or None if it cannot be listed."""
    try:
        store = state.artifact_store_for(uri)
        return dict(_walk(store, ""))
    except Exception:  # an unreachable or foreign location: the client then does not compare files
        return None


def _walk(store: ArtifactStore, path: str) -> Any:
    for info in store.list(path or None):
        if info.is_dir:
            yield from _walk(store, info.path)
        else:
            yield info.path, int(info.file_size or 0)


def import_bundle_file(state: ServerState, path: str) -> dict[str, Any]:
    """Check and import the bundle at ``path`` (a ``.tar``) into the server's store; return the answer.

    Raises:
        InvalidValueError: The bundle is malformed (nothing is written).
        Conflict: Another import wrote the same experiment or run meanwhile (send the bundle again).
    """
    from fitscribe.migrate.bundle_check import open_checked_bundle
    from fitscribe.migrate.plan import Importer

    source = open_checked_bundle(path)
    try:
        bulk = _bulk(state)
        importer = Importer(source, bulk, open_artifacts=state.artifact_store_for, foreign_artifacts=True,
                            scoped_state=True)
        try:
            report = importer.run()
        except Exception as exc:
            if any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__):
                raise Conflict("Another import wrote the same experiments or runs at the same time; "
                               "send the bundle again (`fitscribe push` again).") from exc
            raise
    finally:
        source.close()
    answer = asdict(report)
    answer["skipped"] = [hide_paths(item) for item in report.skipped]
    return {"report": answer}
