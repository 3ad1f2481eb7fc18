"""JSON endpoints the UI's scripts read (``/ui/api/...``): runs table pages, children of a run, live
refresh of running runs and per-experiment summaries. All are GET reads; writes go through the
MLflow REST API. Errors are MLflow-style JSON with a 4xx status (a bad filter's message is shown
under the filter box as the store wrote it).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from fitscribe.entities import Run
from fitscribe.errors import InvalidValueError
from fitscribe.server.state import ServerState
from fitscribe.server.ui.endpoints import json_endpoint
from fitscribe.server.ui.pages import PARENT_TAG, SYSTEM_TAG_PREFIXES, run_summary_fields, split_ids, whole_number
from fitscribe.wire import double_to_json

__all__ = ["api_routes", "run_row", "PAGE_SIZE", "SUMMARY_CAP"]

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
SUMMARY_CAP = 1000
"""Run counts on the experiments page stop at this many (shown as ``1000+``) unless the store counts."""

def api_routes() -> list[BaseRoute]:
    """Return the routes of the UI's JSON API."""
    return [
        Route("/ui/api/runs", json_endpoint(runs_api), methods=["GET"]),
        Route("/ui/api/runs/children", json_endpoint(children_api), methods=["GET"]),
        Route("/ui/api/runs/refresh", json_endpoint(refresh_api), methods=["GET"]),
        Route("/ui/api/runs/has-children", json_endpoint(has_children_api), methods=["GET"]),
        Route("/ui/api/runs/columns", json_endpoint(columns_api), methods=["GET"]),
        Route("/ui/api/experiments/summary", json_endpoint(experiments_summary_api), methods=["GET"]),
    ]


def run_row(run: Run) -> dict[str, Any]:
    """Return one runs-table row: the fixed columns, params, tags and metrics as ``[last, min, max]``."""
    summaries = run.data.metric_summaries
    metrics = {}
    for key, value in run.data.metrics.items():
        summary = summaries.get(key)
        metrics[key] = [double_to_json(value), double_to_json(summary.min if summary else None),
                        double_to_json(summary.max if summary else None)]
    row = run_summary_fields(run)
    row.update(params=dict(run.data.params), tags=dict(run.data.tags), metrics=metrics)
    return row


def _max_results(request: Request) -> int:
    return whole_number(request.query_params.get("max_results"), "max_results", 1, MAX_PAGE_SIZE, PAGE_SIZE)


def runs_api(request: Request, s: ServerState) -> dict[str, Any]:
    """One page of the runs table.

    Query: ``experiment_ids`` (comma-separated), ``filter`` (the search grammar), ``order_by`` (one
    clause, e.g. ``metrics.`loss` DESC``), ``page_token``, ``max_results``, ``nested=1`` (top-level
    runs only; ``/ui/api/runs/has-children`` then tells which rows have children).
    """
    q = request.query_params
    ids = split_ids(q.get("experiment_ids"), "experiment_ids")
    user_filter = (q.get("filter") or "").strip()
    nested = q.get("nested") == "1"
    condition = user_filter
    if nested:
        top = f"tags.`{PARENT_TAG}` IS NULL"
        condition = f"({user_filter}) AND {top}" if user_filter else top
    order_by = [q["order_by"]] if q.get("order_by") else None
    try:
        found = s.tracking.search_runs(ids, condition or None, max_results=_max_results(request), order_by=order_by,
                                       page_token=q.get("page_token") or None)
    except InvalidValueError:
        if nested and user_filter:  # report the user's own filter, not our wrapper around it
            s.tracking.search_runs(ids, user_filter, max_results=1)
        raise
    return {"runs": [run_row(r) for r in found], "next_page_token": found.token}


def has_children_api(request: Request, s: ServerState) -> dict[str, Any]:
    """Which of ``run_ids`` (of ``experiment_ids``) have child runs. Asked for after a page is shown:
    it scans the experiment's tags (about 0.2 s at 100,000 runs) and must not delay the table."""
    ids = split_ids(request.query_params.get("experiment_ids"), "experiment_ids")
    run_ids = split_ids(request.query_params.get("run_ids"), "run_ids")
    if len(run_ids) > MAX_PAGE_SIZE:
        raise InvalidValueError(f"At most {MAX_PAGE_SIZE} run_ids per request, not {len(run_ids)}.")
    return {"has_children": sorted(_parents_with_children(s, ids, run_ids))}


def _parents_with_children(s: ServerState, experiment_ids: list[str], run_ids: list[str]) -> set[str]:
    """Return which of ``run_ids`` have at least one child run (one query)."""
    listed = ", ".join(f"'{i}'" for i in run_ids if i.isalnum())
    if not listed:
        return set()
    children = s.tracking.search_runs(experiment_ids, f"tags.`{PARENT_TAG}` IN ({listed})", max_results=SUMMARY_CAP)
    return {c.data.tags[PARENT_TAG] for c in children}


def children_api(request: Request, s: ServerState) -> dict[str, Any]:
    """The child runs of ``parent`` (a run id), newest first, with which of them have children."""
    parent = request.query_params.get("parent", "")
    if not parent.isalnum():
        raise InvalidValueError(f"parent must be a run id (letters and digits), not {parent!r}.")
    run = s.tracking.get_run(parent)
    ids = [run.info.experiment_id]
    found = s.tracking.search_runs(ids, f"tags.`{PARENT_TAG}` = '{parent}'", max_results=MAX_PAGE_SIZE,
                                   order_by=["attributes.start_time DESC"])
    return {"runs": [run_row(r) for r in found], "truncated": found.token is not None}


def columns_api(request: Request, s: ServerState) -> dict[str, Any]:
    """The param, metric and tag keys (``mlflow.*`` tags left out) of the newest runs of
    ``experiment_ids``: up to ``SUMMARY_CAP`` runs are read, so the column chooser can offer keys
    that the loaded pages do not show."""
    ids = split_ids(request.query_params.get("experiment_ids"), "experiment_ids")
    found = s.tracking.search_runs(ids, max_results=SUMMARY_CAP)
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    for run in found:
        params.update(run.data.params)
        metrics.update(run.data.metrics)
        tags.update(k for k in run.data.tags if not k.startswith(SYSTEM_TAG_PREFIXES))
    return {"params": sorted(params), "metrics": sorted(metrics), "tags": sorted(tags),
            "sampled_runs": len(found), "complete": found.token is None}


def refresh_api(request: Request, s: ServerState) -> dict[str, Any]:
    """Current rows of the given runs (``run_ids``), for the live refresh of running runs."""
    ids = split_ids(request.query_params.get("run_ids"), "run_ids")
    if len(ids) > MAX_PAGE_SIZE:
        raise InvalidValueError(f"At most {MAX_PAGE_SIZE} run_ids per refresh, not {len(ids)}.")
    rows = []
    for run_id in ids:
        try:
            rows.append(run_row(s.tracking.get_run(run_id)))
        except LookupError:  # purged since the page loaded: the row simply stays as it was
            continue
    return {"runs": rows}


def experiments_summary_api(request: Request, s: ServerState) -> dict[str, Any]:
    """Run counts and last activity per experiment (``ids``); counts stop at ``SUMMARY_CAP`` (``more``)."""
    ids = split_ids(request.query_params.get("ids"), "ids")
    out = {}
    for experiment_id in ids[:200]:
        out[experiment_id] = _experiment_summary(s, experiment_id)
    return {"experiments": out}


def _experiment_summary(s: ServerState, experiment_id: str) -> dict[str, Any]:
    count = s.tracking.count_runs([experiment_id])
    newest = s.tracking.search_runs([experiment_id], max_results=1, order_by=["attributes.start_time DESC"])
    last = None
    if newest:
        info = newest[0].info
        last = max(info.start_time or 0, info.end_time or 0)
    if count is not None:
        return {"runs": count, "more": False, "last_activity": last}
    page = s.tracking.search_runs([experiment_id], max_results=SUMMARY_CAP)
    return {"runs": len(page), "more": page.token is not None, "last_activity": last}
