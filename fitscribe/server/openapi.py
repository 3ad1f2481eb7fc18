"""The OpenAPI 3.1 description of what the server answers, built from the endpoint declarations.

Every RPC endpoint's fields come from the same declaration the server checks requests against, so the
document cannot drift from the handlers. The artifact proxy and the plain routes are described here.
"""

from __future__ import annotations

from typing import Any, Sequence

from fitscribe.server.routes import API_PREFIXES, Endpoint, Field

__all__ = ["build_openapi"]

_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int64": {"oneOf": [{"type": "integer", "format": "int64"}, {"type": "string", "pattern": r"^-?\d+$"}]},
    "double": {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]},
    "bool": {"type": "boolean"},
    "strings": {"type": "array", "items": {"type": "string"}},
    "objects": {"type": "array", "items": {"type": "object"}},
    "object": {"type": "object"},
}
_QUERY_SCHEMAS = {**_SCHEMAS, "int64": {"type": "integer", "format": "int64"},
                  "double": {"type": "string"}, "bool": {"type": "string", "enum": ["true", "false"]}}

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(ok: dict[str, Any], *statuses: str) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    for status in statuses or ("400", "404"):
        out[status] = {"description": "MLflow-style error", "content": {"application/json": {"schema": _ERROR}}}
    return out


_JSON_OK = {"description": "The answer (a JSON object)", "content": {"application/json": {"schema": {"type": "object"}}}}


_RUN_ID = "$response.body#/run/info/run_id"
_EXPERIMENT_ID = "$response.body#/experiment_id"
_MODEL_NAME = "$response.body#/registered_model/name"
_LINKS: dict[tuple[str, str], tuple[tuple[str, str, str, str], ...]] = {
    # (method, path) of a creating call -> (method, path, field, value) of the calls it enables; the
    # links let API fuzzers (schemathesis' stateful phase) reach existing resources, not only 404s.
    ("POST", "experiments/create"): (
        ("GET", "experiments/get", "experiment_id", _EXPERIMENT_ID),
        ("POST", "experiments/update", "experiment_id", _EXPERIMENT_ID),
        ("POST", "experiments/set-experiment-tag", "experiment_id", _EXPERIMENT_ID),
        ("POST", "runs/create", "experiment_id", _EXPERIMENT_ID),
    ),
    ("POST", "runs/create"): (
        ("GET", "runs/get", "run_id", _RUN_ID),
        ("POST", "runs/log-batch", "run_id", _RUN_ID),
        ("POST", "runs/log-metric", "run_id", _RUN_ID),
        ("POST", "runs/log-parameter", "run_id", _RUN_ID),
        ("POST", "runs/set-tag", "run_id", _RUN_ID),
        ("POST", "runs/update", "run_id", _RUN_ID),
        ("GET", "metrics/get-history", "run_id", _RUN_ID),
        ("GET", "artifacts/list", "run_id", _RUN_ID),
    ),
    ("POST", "registered-models/create"): (
        ("GET", "registered-models/get", "name", _MODEL_NAME),
        ("POST", "model-versions/create", "name", _MODEL_NAME),
        ("GET", "registered-models/get-history", "name", _MODEL_NAME),
    ),
}


def _operation_id(method: str, path: str) -> str:
    return f"{method.lower()}_{path.replace('/', '_').replace('-', '_')}"


def _links(ep: Endpoint, known: set[tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI links from a creating endpoint's answer to the endpoints that take what it created."""
    links: dict[str, Any] = {}
    for method, path, field, value in _LINKS.get((ep.method, ep.path), ()):
        if (method, path) not in known:
            continue
        link: dict[str, Any] = {"operationId": _operation_id(method, path)}
        if method == "GET":
            link["parameters"] = {field: value}
        else:
            link["requestBody"] = {field: value}
        links[_operation_id(method, path)] = link
    return links


def _operation(ep: Endpoint, known: set[tuple[str, str]]) -> dict[str, Any]:
    path_names = {f.name for f in ep.fields if "{" + f.name + "}" in ep.path}
    links = _links(ep, known)
    op: dict[str, Any] = {"operationId": _operation_id(ep.method, ep.path), "summary": ep.summary,
                          "responses": _responses({**_JSON_OK, "links": links} if links else _JSON_OK)}
    parameters = [{"name": f.name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for f in ep.fields if f.name in path_names]
    others = [f for f in ep.fields if f.name not in path_names]
    if ep.method == "GET":
        parameters += [_query_parameter(f) for f in others]
    elif others:
        op["requestBody"] = {"required": any(f.required for f in others),
                             "content": {"application/json": {"schema": _body_schema(others)}}}
    if parameters:
        op["parameters"] = parameters
    return op


def _query_parameter(field: Field) -> dict[str, Any]:
    param: dict[str, Any] = {"name": field.name, "in": "query", "required": field.required,
                             "schema": _QUERY_SCHEMAS[field.type]}
    if field.type in ("strings", "objects"):
        param["explode"] = True
    return param


def _body_schema(items: Sequence[Field]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {f.name: _SCHEMAS[f.type] for f in items}}
    required = [f.name for f in items if f.required]
    if required:
        schema["required"] = required
    return schema


def _proxy_paths(prefix: str) -> dict[str, Any]:
    path_param = [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "Relative to the artifact destination, e.g. 1/<run_id>/artifacts/model.pkl"}]
    raw = {"description": "The file's bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    return {
        f"{prefix}/artifacts": {"get": {
            "operationId": "list_proxied_artifacts", "summary": "List a folder of the artifact destination.",
            "parameters": [{"name": "path", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": _responses(_JSON_OK, "400")}},
        f"{prefix}/artifacts/{{path}}": {
            "parameters": path_param,
            "get": {"operationId": "download_artifact", "summary": "Download a file.",
                    "responses": _responses(raw, "400", "404")},
            "put": {"operationId": "upload_artifact", "summary": "Upload a file (raw bytes as the body).",
                    "requestBody": {"required": False, "content": {"application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"}}}},
                    "responses": _responses(_JSON_OK, "400")},
            "delete": {"operationId": "delete_artifact", "summary": "Delete a file or folder.",
                       "responses": _responses(_JSON_OK, "400")},
        },
    }


def _import_paths() -> dict[str, Any]:
    """The fitscribe extension used by ``fitscribe push`` (server/routes/imports.py)."""
    names = {"type": "array", "items": {"type": "string"}, "maxItems": 100000}
    return {
        "/api/2.0/fitscribe/import/compare": {"post": {
            "operationId": "fitscribe_import_compare",
            "summary": "fitscribe extension: what this server holds of the given runs (digest, counts, artifact "
                       "files), experiments and registered models (needs read-write access).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"run_ids": names, "experiments": names, "models": names}}}}},
            "responses": _responses(_JSON_OK, "400", "403")}},
        "/api/2.0/fitscribe/import": {"post": {
            "operationId": "fitscribe_import_bundle",
            "summary": "fitscribe extension: import a bundle (the uncompressed .tar of `fitscribe export`; "
                       "Content-Type application/x-tar or application/octet-stream) into this server's store, "
                       "keeping run ids and times; experiments matched by name. Idempotent. Needs read-write "
                       "access; the body limit is --max-upload-mb.",
            "requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}},
            "responses": _responses(_JSON_OK, "400", "403", "409", "413")}},
    }


def _plain_paths() -> dict[str, Any]:
    text = {"description": "Plain text", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/health": {"get": {"operationId": "health", "summary": "Liveness probe: answers OK.", "responses": {"200": text}}},
        "/version": {"get": {"operationId": "version", "summary": "The fitscribe version.", "responses": {"200": text}}},
        "/api/3.0/mlflow/server-info": {"get": {"operationId": "server_info", "summary": "Capabilities, for MLflow's client.",
                                                "responses": {"200": _JSON_OK}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document.", "responses": {"200": _JSON_OK}}},
    }


def build_openapi(endpoints: Sequence[Endpoint], *, serve_artifacts: bool, version: str) -> dict[str, Any]:
    """Return the OpenAPI document of a server answering ``endpoints`` (and the proxy if served).

    Only the canonical ``/api/...`` paths are listed; ``/ajax-api/...`` mirrors them.
    """
    paths: dict[str, Any] = _plain_paths()
    known = {(ep.method, ep.path) for ep in endpoints}
    for ep in endpoints:
        paths.setdefault(f"{API_PREFIXES[0]}/{ep.path}", {})[ep.method.lower()] = _operation(ep, known)
    if serve_artifacts:
        paths.update(_proxy_paths("/api/2.0/mlflow-artifacts"))
    paths.update(_import_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "fitscribe tracking server", "version": version,
                 "description": "MLflow's REST API 2.0 (tracking, MLflow 3 logged models, model registry, artifact proxy), "
                                "and fitscribe extensions under /api/2.0/fitscribe/ (bundle import)."},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error_code", "message"],
            "properties": {"error_code": {"type": "string"}, "message": {"type": "string"},
                           "fitscribe_error": {"type": "string"}}}}},
    }
