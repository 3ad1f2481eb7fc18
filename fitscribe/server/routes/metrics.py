"""Metric history endpoint."""

from __future__ import annotations

from typing import Any

from fitscribe.server.params import Params
from fitscribe.server.routes import Endpoint, fields
from fitscribe.server.serialization import metric_to_json, page_to_json
from fitscribe.server.state import ServerState

__all__ = ["ENDPOINTS", "MAX_HISTORY_PAGE"]

MAX_HISTORY_PAGE = 50000


def get_metric_history(s: ServerState, p: Params) -> dict[str, Any]:
    """Answer the points of one metric, by step then timestamp; 404 for an unknown run."""
    page = s.tracking.get_metric_history(  # RunNotFound: 404 RESOURCE_DOES_NOT_EXIST
        p.run_id(), p.required_text("metric_key"),
        p.integer("max_results", minimum=1, maximum=MAX_HISTORY_PAGE), p.text("page_token") or None,
    )
    return page_to_json("metrics", [metric_to_json(m) for m in page], page.token)


ENDPOINTS = (
    Endpoint("GET", "metrics/get-history", get_metric_history, "Get the history of one metric of a run.",
             fields("run_id run_uuid metric_key! max_results:int64 page_token")),
)
