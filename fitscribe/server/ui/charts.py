"""Chart pages (``/compare``, ``/metric``) and the metric data JSON API of the web UI.

JSON endpoints (GET, reads only; errors are MLflow-style ``{"error_code", "message"}`` with a 4xx):

- ``/ui/api/metrics/series?run_ids=a,b&key=loss&x=step|time|relative&points=2000``
  ``&min_step=&max_step=&x_min=&x_max=``: one M4-downsampled series per run (see
  :func:`~fitscribe.server.ui.chart_data.series_json`); at most 100 runs per request.
- ``/ui/api/metrics/keys?run_ids=a,b``: the metric keys of the runs (all, and per run).
- ``/ui/api/metrics/summary?run_ids=a,b``: params and last/min/max of every metric of the runs,
  for parallel coordinates and scatter plots.

Pages: ``/compare?run_ids=a,b`` (params side by side, metrics table, one chart per metric,
parallel coordinates, scatter) and ``/metric?run_ids=a,b&key=loss`` (one zoomable chart that
re-fetches the visible range). Their data travels in ``<script type="application/json">`` blocks
and from the JSON API; the pages run no inline script.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fitscribe.errors import InvalidValueError
from fitscribe.server.params import Params
from fitscribe.server.ui.endpoints import json_endpoint
from fitscribe.server.ui.chart_data import (
    DEFAULT_POINTS,
    MAX_POINTS,
    SeriesRequest,
    load_histories,
    parse_run_ids,
    series_json,
    start_times,
    summary_json,
)

if TYPE_CHECKING:
    from fitscribe.entities import Run
    from fitscribe.server.state import ServerState

__all__ = ["chart_routes", "fetch_runs", "compare_page", "metric_page"]



def chart_routes() -> list[BaseRoute]:
    """Return the routes of the compare and metric pages and their JSON API."""
    from fitscribe.server.ui.pages import page

    return [
        Route("/compare", _allow_eval(page(compare_page)), methods=["GET", "HEAD"]),
        Route("/metric", page(metric_page), methods=["GET", "HEAD"]),
        Route("/ui/api/metrics/series", json_endpoint(series_api), methods=["GET"]),
        Route("/ui/api/metrics/keys", json_endpoint(keys_api), methods=["GET"]),
        Route("/ui/api/metrics/summary", json_endpoint(summary_api), methods=["GET"]),
    ]


def _allow_eval(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Let the page's scripts (not its content) use ``eval``: plotly's parcoords draws with regl,
    which compiles its WebGL commands with ``new Function``; under a CSP without ``'unsafe-eval'``
    plotly reports "WebGL is not supported". Scripts still come from this server only."""

    async def wrapped(request: Request) -> Response:
        response: Response = await endpoint(request)
        policy = response.headers.get("content-security-policy")
        if policy and "'unsafe-eval'" not in policy:
            response.headers["Content-Security-Policy"] = policy.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'", 1)
        return response

    wrapped.__name__ = getattr(endpoint, "__name__", "page")
    wrapped.__doc__ = endpoint.__doc__
    return wrapped


def _params(request: Request) -> Params:
    query = request.query_params
    return Params({name: query.getlist(name) for name in query.keys()}, from_query=True)


def _finite(p: Params, name: str) -> float | None:
    value = p.double(name)
    if value is not None and not math.isfinite(value):
        raise InvalidValueError(f"Invalid value for parameter '{name}': it must be a finite number.")
    return value


def fetch_runs(s: "ServerState", run_ids: list[str]) -> list["Run"]:
    """Return the runs in the order given.

    Raises:
        RunNotFound: A run does not exist (answered 404).
        InvalidValueError: A run id is malformed.
    """
    return [s.tracking.get_run(run_id) for run_id in run_ids]


def series_request(p: Params) -> SeriesRequest:
    """Build the :class:`SeriesRequest` of a query string (``x``, ``points``, step and x ranges)."""
    return SeriesRequest(
        axis=p.text("x") or "step",
        points=p.integer("points", DEFAULT_POINTS, minimum=4, maximum=MAX_POINTS) or DEFAULT_POINTS,
        min_step=p.integer("min_step"),
        max_step=p.integer("max_step"),
        x_min=_finite(p, "x_min"),
        x_max=_finite(p, "x_max"),
    )


def series_api(request: Request, s: "ServerState") -> dict[str, Any]:
    """Answer one downsampled series per run for the metric ``key``."""
    p = _params(request)
    run_ids = parse_run_ids(p.text("run_ids"))
    key = p.required_text("key")
    wanted = series_request(p)
    starts = start_times(s.tracking, run_ids)
    histories = load_histories(s.tracking, run_ids, key, wanted.min_step, wanted.max_step)
    series = [series_json(run_id, histories[run_id], wanted, starts[run_id]) for run_id in run_ids]
    return {"key": key, "x": wanted.axis, "points": wanted.points, "series": series}


def keys_api(request: Request, s: "ServerState") -> dict[str, Any]:
    """Answer the metric keys of the runs: ``{"keys": [...], "runs": {run_id: [...]}}``."""
    runs = fetch_runs(s, parse_run_ids(_params(request).text("run_ids")))
    per_run = {r.info.run_id: sorted(r.data.metrics) for r in runs}
    return {"keys": sorted({k for keys in per_run.values() for k in keys}), "runs": per_run}


def summary_api(request: Request, s: "ServerState") -> dict[str, Any]:
    """Answer params and metric summaries of the runs (parallel coordinates, scatter)."""
    return summary_json(fetch_runs(s, parse_run_ids(_params(request).text("run_ids"))))


# -- pages ---------------------------------------------------------------------------------------------
def _param_rows(runs: list["Run"]) -> list[dict[str, Any]]:
    keys = sorted({k for r in runs for k in r.data.params})
    rows = []
    for key in keys:
        values = [r.data.params.get(key) for r in runs]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    return rows


def _metric_rows(runs: list["Run"]) -> list[dict[str, Any]]:
    keys = sorted({k for r in runs for k in r.data.metrics})
    rows = []
    for key in keys:
        cells = []
        for r in runs:
            found = r.data.metric_summaries.get(key)
            value = r.data.metrics.get(key)
            cells.append(None if value is None else {"last": value, "min": found.min if found else None,
                                                      "max": found.max if found else None})
        rows.append({"key": key, "cells": cells})
    return rows


def _run_entries(runs: list["Run"]) -> list[dict[str, Any]]:
    return [{"run_id": r.info.run_id, "name": r.info.run_name or r.info.run_id,
             "experiment_id": r.info.experiment_id} for r in runs]


def compare_page(request: Request, s: "ServerState") -> tuple[str, dict[str, Any]]:
    """Compare runs: params side by side, metrics table, one overlaid chart per metric, parallel
    coordinates of params against a metric, and a scatter of one param or metric against another."""
    run_ids = parse_run_ids(request.query_params.get("run_ids"))
    runs = fetch_runs(s, run_ids)
    summary = summary_json(runs)
    data = {"runs": _run_entries(runs), "metric_keys": summary["metric_keys"], "summary": summary}
    return "compare.html", {
        "title": f"Compare {len(runs)} runs", "runs": runs, "param_rows": _param_rows(runs),
        "metric_rows": _metric_rows(runs), "data": data,
    }


def metric_page(request: Request, s: "ServerState") -> tuple[str, dict[str, Any]]:
    """One metric of several runs on one big zoomable chart (re-fetched at full resolution on zoom)."""
    p = _params(request)
    run_ids = parse_run_ids(p.text("run_ids"))
    key = p.required_text("key")
    wanted = series_request(p)
    runs = fetch_runs(s, run_ids)
    keys = sorted({key, *(k for r in runs for k in r.data.metrics)})
    data = {"runs": _run_entries(runs), "key": key, "x": wanted.axis, "metric_keys": keys}
    return "metric.html", {"title": f"{key}: {len(runs)} runs", "runs": runs, "key": key, "data": data,
                           "metric_keys": keys}
