"""HTML pages of the web UI: the experiments list, the runs table and the run page.

Each page is a plain function ``(request, state) -> (template, context)`` run in a worker thread
(the stores block); :func:`page` turns it into a Starlette endpoint and answers errors with an HTML
error page whose status comes from the server's one error table.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fitscribe.entities import Run, ViewType
from fitscribe.errors import FitscribeError, InvalidValueError
from fitscribe.server.errors import error_body, hide_paths
from fitscribe.server.state import ServerState
from fitscribe.server.ui.templating import render

__all__ = ["SYSTEM_TAG_PREFIXES", "page_routes", "page", "PageFn", "PARENT_TAG", "NOTE_TAG", "split_ids", "whole_number", "run_summary_fields"]

SYSTEM_TAG_PREFIXES = ("mlflow.", "fitscribe.")
"""Tags written by MLflow or fitscribe themselves (run name, source, model digests...): shown apart."""
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
SOURCE_TAG = "mlflow.source.name"
COMMIT_TAG = "mlflow.source.git.commit"
SPARK_POINTS = 60
MAX_SPARKLINES = 40
MAX_THUMBNAILS = 12

PageFn = Callable[[Request, ServerState], "tuple[str, dict[str, Any]]"]


def page(fn: PageFn) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a page function into an endpoint: run it in a thread, render its template, answer errors."""

    def build(request: Request) -> Response:
        try:
            name, context = fn(request, request.app.state.server)
        except Exception as exc:  # answered through the server's error table (bugs are logged there)
            body, status = error_body(exc)
            return render(request, "error.html", {"title": "Error", "status": status, **body}, status)
        return render(request, name, context)

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(build, request)

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


def page_routes() -> list[BaseRoute]:
    """Return the routes of the experiments, runs and run pages."""
    return [
        Route("/", page(experiments_page), methods=["GET", "HEAD"]),
        Route("/experiments/{experiment_id}", page(experiment_runs_page), methods=["GET", "HEAD"]),
        Route("/runs", page(runs_page), methods=["GET", "HEAD"]),
        Route("/runs/{run_id}", page(run_page), methods=["GET", "HEAD"]),
    ]


def split_ids(text: str | None, what: str) -> list[str]:
    """Split a comma-separated id list from a query string; refuse an empty one.

    Raises:
        InvalidValueError: No id was given.
    """
    ids = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not ids:
        raise InvalidValueError(f"No {what} given: add ?{what}=<id>,<id> to the URL.")
    return ids


# -- experiments ---------------------------------------------------------------------------------------
def experiments_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """The experiments list: name, id, creation and last update; run counts are filled in by the page's
    script from ``/ui/api/experiments/summary``. ``?q=`` keeps the experiments whose name contains it."""
    query = request.query_params.get("q", "").strip()
    deleted = request.query_params.get("deleted") == "1"
    view = ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY
    experiments = []
    token: str | None = None
    while True:
        found = s.tracking.search_experiments(view_type=view, max_results=1000, page_token=token,
                                              order_by=["last_update_time DESC"])
        experiments.extend(e for e in found if query.lower() in e.name.lower())
        token = found.token
        if not token:
            break
    return "experiments.html", {"title": "Experiments", "experiments": experiments, "query": query,
                                "deleted": deleted}


# -- runs table ----------------------------------------------------------------------------------------
def experiment_runs_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """The runs table of one experiment."""
    return _runs_table(request, s, [request.path_params["experiment_id"]])


def runs_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """The runs table of several experiments: ``/runs?experiment_ids=1,2``."""
    return _runs_table(request, s, split_ids(request.query_params.get("experiment_ids"), "experiment_ids"))


def _runs_table(request: Request, s: ServerState, ids: list[str]) -> tuple[str, dict[str, Any]]:
    experiments = [s.tracking.get_experiment(i) for i in ids]
    title = experiments[0].name if len(experiments) == 1 else f"{len(experiments)} experiments"
    config = {
        "experiment_ids": [e.experiment_id for e in experiments],
        "filter": request.query_params.get("filter", ""),
        "order_by": request.query_params.get("order_by", ""),
        # ?refresh=<seconds> between polls of running runs; ?page_size=<runs> per page
        "refresh_ms": 1000 * whole_number(request.query_params.get("refresh"), "refresh", 1, 3600, 5),
        "page_size": whole_number(request.query_params.get("page_size"), "page_size", 1, 1000, 100),
    }
    return "runs.html", {"title": title, "experiments": experiments, "config": config}


def whole_number(text: str | None, name: str, low: int, high: int, default: int) -> int:
    """Read a whole-number query parameter in ``[low, high]`` (``default`` when absent).

    Raises:
        InvalidValueError: The value is not a whole number in range.
    """
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidValueError(f"{name} must be a whole number from {low} to {high}, not {text!r}.")
    return int(text)


# -- run page ------------------------------------------------------------------------------------------
def run_summary_fields(run: Run) -> dict[str, Any]:
    """Return the columns every runs table and run page shows: name, status, times, user, source, commit."""
    info, tags = run.info, run.data.tags
    return {
        "run_id": info.run_id, "run_name": info.run_name or "", "experiment_id": info.experiment_id,
        "status": info.status.value, "start_time": info.start_time, "end_time": info.end_time,
        "user_id": info.user_id, "source": tags.get(SOURCE_TAG, ""), "git_commit": tags.get(COMMIT_TAG, ""),
        "parent_run_id": tags.get(PARENT_TAG), "lifecycle_stage": info.lifecycle_stage,
    }


def run_page(request: Request, s: ServerState) -> tuple[str, dict[str, Any]]:
    """One run: info, description, params, metrics with sparklines, tags, datasets, autolog report,
    parent and children, and its top-level artifacts."""
    from fitscribe.server.ui.artifacts import list_folder, preview_kind, read_autolog_reports
    from fitscribe.server.ui.registry_pages import model_folders, versions_of_run

    run = s.tracking.get_run(request.path_params["run_id"])
    experiment = s.tracking.get_experiment(run.info.experiment_id)
    parent = None
    parent_id = run.data.tags.get(PARENT_TAG)
    if parent_id:
        try:
            parent = s.tracking.get_run(parent_id)
        except LookupError:  # a parent deleted for good: show its id only
            parent = None
    children = s.tracking.search_runs([run.info.experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'",
                                      max_results=200, order_by=["attributes.start_time DESC"])
    try:  # an unreachable artifact store must not hide the rest of the run
        store = s.artifact_store_for(run.info.artifact_uri)
        artifacts = list_folder(store, "")
        reports, artifact_error = read_autolog_reports(store, artifacts), None
    except (FitscribeError, OSError) as exc:
        artifacts, reports, artifact_error = [], [], f"The artifacts could not be listed: {hide_paths(str(exc))}"
    summaries = run.data.metric_summaries
    metrics = []
    for i, key in enumerate(sorted(run.data.metrics)):
        summary = summaries.get(key)
        spark = _sparkline(s, run.info.run_id, key) if i < MAX_SPARKLINES else None
        metrics.append({"key": key, "value": run.data.metrics[key], "step": summary.step if summary else None,
                        "min": summary.min if summary else None, "max": summary.max if summary else None,
                        "spark": spark})
    tags = run.data.tags
    return "run.html", {
        "title": run.info.run_name or run.info.run_id, "run": run, "info": run_summary_fields(run),
        "experiment": experiment, "parent": parent, "parent_id": parent_id, "children": list(children),
        "more_children": children.token is not None, "metrics": metrics,
        "params": sorted(run.data.params.items()),
        "user_tags": sorted((k, v) for k, v in tags.items() if not k.startswith(SYSTEM_TAG_PREFIXES)),
        "system_tags": sorted((k, v) for k, v in tags.items() if k.startswith(SYSTEM_TAG_PREFIXES)),
        "note": tags.get(NOTE_TAG, ""), "datasets": run.inputs.dataset_inputs, "artifacts": artifacts,
        "reports": reports, "artifact_error": artifact_error,
        "registered_versions": versions_of_run(s, run.info.run_id),
        "model_folders": model_folders(store, artifacts) if artifact_error is None else [],
        "images": [a for a in artifacts if not a.is_dir and preview_kind(a.path) == "image"][:MAX_THUMBNAILS],
    }


def _sparkline(s: ServerState, run_id: str, key: str) -> dict[str, Any] | None:
    """Return an inline-SVG polyline (``points`` in a 100 x 24 box) of a metric's history, M4-downsampled
    to :data:`SPARK_POINTS` buckets (spikes stay visible; non-finite values are left out)."""
    from fitscribe.server.ui.chart_data import load_histories
    from fitscribe.server.ui.downsample import downsample_m4

    history = load_histories(s.tracking, [run_id], key).get(run_id)
    if history is None or len(history.steps) < 2:
        return None
    xs, ys = downsample_m4(history.steps, history.values, SPARK_POINTS)
    if len(xs) < 2:
        return None
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    dx, dy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    points = " ".join(f"{(x - x0) / dx * 100:.1f},{22 - (y - y0) / dy * 20:.1f}" for x, y in zip(xs, ys))
    return {"points": points, "count": len(history.steps)}
