"""The one table mapping exceptions to MLflow error codes and HTTP statuses, and the error body.

A request that fails because of what the caller sent is answered with a 4xx status: MLflow's client
retries 5xx answers for minutes. Only a bug in fitscribe (an exception no row of the table
matches) is an ``INTERNAL_ERROR`` 500; it is logged with its traceback, and its text is not sent.

Error bodies are MLflow's ``{"error_code": ..., "message": ...}`` plus ``"fitscribe_error"``: the
name of the :mod:`fitscribe.errors` class, so fitscribe's REST client can raise the same class.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.responses import JSONResponse

from fitscribe import errors as e

__all__ = ["ERROR_TABLE", "Conflict", "EndpointNotFound", "Forbidden", "MethodNotAllowed", "NotSupported",
           "error_code_for", "error_body", "error_response"]

_log = logging.getLogger("fitscribe.server")


class EndpointNotFound(e.NotFoundError):
    """No endpoint answers this path and method on this server."""


class MethodNotAllowed(EndpointNotFound):
    """The path exists on this server, but not for this HTTP method."""


class NotSupported(e.FitscribeError):
    """The server understands the request but does not offer the feature (e.g. multipart uploads)."""


class Forbidden(e.FitscribeError):
    """No identity may do this through the server (e.g. touch the server's own records)."""


class Conflict(e.FitscribeError):
    """The request conflicts with the target's state (e.g. overwriting a file of a sealed model)."""


ERROR_TABLE: dict[type[BaseException], tuple[str, int]] = {
    MethodNotAllowed: ("ENDPOINT_NOT_FOUND", 405),
    EndpointNotFound: ("ENDPOINT_NOT_FOUND", 404),
    NotSupported: ("NOT_IMPLEMENTED", 501),  # not retried by MLflow's client
    Forbidden: ("PERMISSION_DENIED", 403),
    Conflict: ("RESOURCE_CONFLICT", 409),
    e.NotFoundError: ("RESOURCE_DOES_NOT_EXIST", 404),
    e.AlreadyExistsError: ("RESOURCE_ALREADY_EXISTS", 400),  # 400, not 409: MLflow's table
    e.InvalidValueError: ("INVALID_PARAMETER_VALUE", 400),
    e.ConfigError: ("INVALID_PARAMETER_VALUE", 400),
    e.InvalidStateError: ("INVALID_PARAMETER_VALUE", 400),  # e.g. logging to a deleted run
    e.RegistryNotSupportedError: ("BAD_REQUEST", 400),
    e.MissingDependencyError: ("NOT_IMPLEMENTED", 501),  # the server lacks an extra; retrying won't help
    e.BackendError: ("TEMPORARILY_UNAVAILABLE", 503),  # database or storage unreachable: worth a retry
    e.SchemaVersionError: ("INTERNAL_ERROR", 500),  # the operator must run `fitscribe db upgrade`
    e.FitscribeError: ("BAD_REQUEST", 400),
    OverflowError: ("INVALID_PARAMETER_VALUE", 400),  # a number sent too large to store (a 40-digit id...)
}
"""Exception class -> (MLflow error code, HTTP status); the nearest class in the MRO wins."""

_BUG = ("INTERNAL_ERROR", 500)
_QUOTED_PATH = re.compile(r"""(['"])(?:file:/*)?/[\w.\-][^'"\n]*\1|file:/+[\w.\-/]*""")
HIDDEN_PATH = "<path hidden>"
"""What stands in an answer for a server file path (the server log has the full message)."""


def hide_paths(message: str) -> str:
    """Return ``message`` with quoted absolute file paths and ``file:`` URIs replaced by
    :data:`HIDDEN_PATH`: answers never reveal where the server keeps its store and artifacts.
    (fitscribe's messages quote paths; unquoted ones, such as a request's URL path, are kept.)

    >>> hide_paths("Could not copy '/srv/ml/artifacts/1/a' to file:///tmp/x/y; no endpoint at /api/2.0/x")
    "Could not copy '<path hidden>' to <path hidden>; no endpoint at /api/2.0/x"
    """
    return _QUOTED_PATH.sub(lambda m: f"{m.group(1)}{HIDDEN_PATH}{m.group(1)}" if m.group(1) else HIDDEN_PATH, message)


def _table_entry(exc: BaseException) -> tuple[str, int] | None:
    for cls in type(exc).__mro__:
        found = ERROR_TABLE.get(cls)
        if found is not None:
            return found
    return None


def error_code_for(exc: BaseException) -> tuple[str, int]:
    """Return the MLflow error code and HTTP status for an exception (INTERNAL_ERROR for a bug)."""
    return _table_entry(exc) or _BUG


def _public_class(exc: BaseException) -> str | None:
    """The name of the nearest :mod:`fitscribe.errors` class of ``exc``, or None."""
    for cls in type(exc).__mro__:
        if cls.__module__ == e.__name__:
            return cls.__name__
    return None


def error_body(exc: BaseException) -> tuple[dict[str, Any], int]:
    """Return the JSON body and HTTP status answering ``exc``.

    Args:
        exc: The exception a handler raised.

    Returns:
        ``({"error_code", "message", "fitscribe_error"?}, status)``.
    """
    entry = _table_entry(exc)
    code, status = entry or _BUG
    if entry is None:  # not in the table: a bug (a SchemaVersionError is a 500 too, but its text is sent)
        _log.error("Unexpected error while answering a request", exc_info=exc)
        message = f"Internal server error ({type(exc).__name__}); this is a bug in fitscribe, see the server log."
        return {"error_code": code, "message": message}, status
    message = str(exc) if isinstance(exc, e.FitscribeError) else f"A number in the request is out of range ({exc})."
    if isinstance(exc, e.BackendError):
        _log.warning("A store failed while answering a request: %s", message)
        message = ("The tracking store or the artifact storage failed or is unavailable; the server log has the "
                   "details. Retry later.")
    elif (hidden := hide_paths(message)) != message:
        _log.info("Answered %s with file paths hidden: %s", type(exc).__name__, message)
        message = hidden
    body: dict[str, Any] = {"error_code": code, "message": message}
    name = _public_class(exc)
    if name is not None:
        body["fitscribe_error"] = name
    return body, status


def error_response(exc: BaseException) -> JSONResponse:
    """Return the JSON response answering ``exc`` (see :data:`ERROR_TABLE`)."""
    body, status = error_body(exc)
    return JSONResponse(body, status_code=status)
