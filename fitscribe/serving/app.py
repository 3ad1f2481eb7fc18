"""The scoring server's ASGI app: ``/invocations``, ``/ping``, ``/health`` and ``/version``.

The routes and answers are those of ``mlflow models serve`` (reference: MLflow's scoring
protocol), so clients and load balancers written for MLflow work unchanged. Where MLflow answers
500 for a client's mistake (a missing Content-Type), this server answers 4xx: a 5xx here means the
server itself failed.

The app is a plain ASGI callable with four fixed routes, no framework: routing and building the
answer cost a few microseconds, where Starlette's router, middleware stack and request/response
objects cost about a tenth of a one-row request's CPU (measured with benchmarks/serving.py).

Prediction runs with a time limit (504 past it, as MLflow); the body is read with a size limit
(413). Errors never carry file paths of the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from fitscribe.serving.batching import Batcher
from fitscribe.serving.protocol import (
    ScoringError,
    as_model_input,
    check_params,
    content_kind,
    encode_predictions,
    parse_csv,
    parse_json,
    parse_parquet,
)

if TYPE_CHECKING:
    from fitscribe.flavors.pyfunc import PyFuncModel

__all__ = ["create_scoring_app", "ScoringApp", "DEFAULT_MAX_REQUEST_MB", "DEFAULT_TIMEOUT_S"]

DEFAULT_MAX_REQUEST_MB = 64
DEFAULT_TIMEOUT_S = 60.0
_LOG = logging.getLogger("fitscribe.serving")
_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_ROUTES = frozenset({"/invocations", "/ping", "/health", "/version"})

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, bytes, bytes]
"""(status, content type, body)."""


class _Scorer:
    """Turns one request into predictions with one loaded model."""

    def __init__(self, model: "PyFuncModel", max_bytes: int, timeout: float) -> None:
        self.model = model
        self.signature = model.signature
        self.max_bytes = max_bytes
        self.timeout = timeout

    def too_large(self) -> ScoringError:
        return ScoringError(f"The request body is larger than this server's limit of {self.max_bytes} bytes.", 413)

    async def read_body(self, receive: Receive, declared: str | None) -> bytes:
        """Read the request body, refusing more than ``max_bytes`` (413) before or while reading it."""
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            raise self.too_large()
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False):  # the usual case: one message
            if len(body) > self.max_bytes:
                raise self.too_large()
            return bytes(body)
        chunks, size = [body], len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self.too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def parse(self, kind: str, body: bytes) -> tuple[Any, dict[str, Any] | None]:
        """Turn a body of ``kind`` (json, csv, parquet) into (model input, checked params)."""
        if kind == "json":
            data, params = parse_json(body, self.signature)
        elif kind == "csv":
            data, params = parse_csv(body), None
        else:
            data, params = parse_parquet(body), None
        if params is None and (self.signature is None or not self.signature.params):
            return data, None  # nothing to check: the hot path
        checked, ignored = check_params(params, self.signature)
        if ignored:
            _LOG.warning("ignoring params the model's signature does not declare: %s", ", ".join(ignored))
        return data, checked

    def predict(self, data: Any, params: dict[str, Any] | None) -> bytes:
        """Predict (on any thread); a refusal of the signature or the model becomes a 400."""
        from fitscribe.flavors.signature import SchemaError

        data = as_model_input(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. extra columns: the answer is still right
                predictions = self.model.predict(data, params) if params else self.model.predict(data)
        except SchemaError as exc:
            raise ScoringError(f"The input does not match the model's signature: {exc}", 400,
                               "INVALID_PARAMETER_VALUE") from None
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:  # the model refused this input (NaN for sklearn, wrong shape for torch...)
            raise ScoringError(f"The model could not predict on this input: {type(exc).__name__}: {exc}") from None
        return encode_predictions(predictions)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _url(scope: Scope, path: str) -> str:
    """The request's URL with another path (for a redirect's Location)."""
    host = _header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    query = scope.get("query_string", b"")
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


async def _lifespan(receive: Receive, send: Send, on_startup: Callable[[], None]) -> None:
    """Answer uvicorn's startup and shutdown messages (``on_startup`` runs at startup; nothing to close)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            on_startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class ScoringApp:
    """The ASGI application serving one model over MLflow's scoring protocol.

    Attributes:
        state: ``state.model`` is the model served (as on a Starlette app).
    """

    def __init__(self, model: "PyFuncModel", *, max_request_mb: float = DEFAULT_MAX_REQUEST_MB,
                 timeout: float = DEFAULT_TIMEOUT_S, batching: bool = True,
                 warm_up: Callable[[], None] | None = None) -> None:
        from fitscribe import __version__

        self.state = SimpleNamespace(model=model)
        self.scorer = _Scorer(model, int(max_request_mb * 1024 * 1024), timeout)
        self.batcher = Batcher(self.scorer, batching=batching)
        self._version = __version__.encode()
        self._warm_up = warm_up
        self._warming: asyncio.Future[None] | None = None

    def _start_warm_up(self) -> None:
        """Start ``warm_up`` on a worker thread (at the server's startup; /invocations waits for it)."""
        if self._warm_up is not None:
            self._warming = asyncio.get_running_loop().run_in_executor(None, self._warm_up)
            self._warm_up = None

    async def _warmed(self) -> None:
        """Wait until the warm-up has finished (at once after that; its error is logged, not raised)."""
        warming = self._warming
        if warming is None:
            return
        try:
            await asyncio.shield(warming)
        except Exception as exc:  # e.g. a deferred module that fails to import: the prediction will say so
            _LOG.warning("warming up the scoring server failed: %s: %s", type(exc).__name__, exc)
        self._warming = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (``http`` or ``lifespan``)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._start_warm_up)
            return
        if scope["type"] != "http":
            return  # no websockets here (uvicorn runs with ws="none")
        path, method = scope["path"], scope["method"]
        allow = b""
        if path == "/invocations":
            if method == "POST":
                status, kind, body = await self.invocations(scope, receive)
            else:
                status, kind, body, allow = 405, _TEXT, b"Method Not Allowed", b"POST"
        elif path in ("/ping", "/health", "/version"):
            if method in ("GET", "HEAD"):
                status, kind, body = 200, _JSON, self._version if path == "/version" else b"\n"
            else:
                status, kind, body, allow = 405, _TEXT, b"Method Not Allowed", b"GET, HEAD"
        elif path[:-1] in _ROUTES and path.endswith("/"):  # as Starlette and FastAPI: /ping/ -> /ping
            status, kind, body, allow = 307, b"", b"", b""
        else:
            status, kind, body = 404, _TEXT, b"Not Found"
        headers = [(b"content-length", b"%d" % len(body))]
        if kind:
            headers.append((b"content-type", kind))
        if allow:
            headers.append((b"allow", allow))
        if status == 307:
            headers.append((b"location", _url(scope, path[:-1]).encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def invocations(self, scope: Scope, receive: Receive) -> Answer:
        """Answer ``POST /invocations``: predictions, or MLflow's error body with a 4xx (504 past the timeout)."""
        scorer = self.scorer
        if self._warming is not None:
            await self._warmed()
        try:
            kind = content_kind(_header(scope, b"content-type"))
            body = await scorer.read_body(receive, _header(scope, b"content-length"))
            data, params = scorer.parse(kind, body)
            payload = await asyncio.wait_for(self.batcher.submit(data, params), scorer.timeout)
        except ScoringError as exc:
            return exc.status, _JSON, json.dumps(exc.to_json()).encode()
        except asyncio.TimeoutError:
            return 504, _TEXT, f"The prediction took longer than {scorer.timeout:g} s.".encode()
        return 200, _JSON, payload


def create_scoring_app(model: "PyFuncModel", *, max_request_mb: float = DEFAULT_MAX_REQUEST_MB,
                       timeout: float = DEFAULT_TIMEOUT_S, batching: bool = True,
                       warm_up: Callable[[], None] | None = None) -> ScoringApp:
    """Build the scoring server for one loaded model.

    Args:
        model: The model, as returned by :func:`fitscribe.pyfunc.load_model`.
        max_request_mb: Larger request bodies are refused with 413.
        timeout: Seconds a prediction may take before the request answers 504.
        batching: Predict the rows of requests that queue up during a prediction together
            (scikit-learn and XGBoost DataFrame input; see :mod:`fitscribe.serving.batching`).
        warm_up: Run on a worker thread when the server starts (after the lifespan startup, as
            ``/ping`` answers); ``/invocations`` requests wait until it has returned. ``serve``
            passes :func:`fitscribe.serving.deferred.finish` when the model's load deferred modules.

    Returns:
        An ASGI application; serve it with uvicorn (``fitscribe models serve`` does).
    """
    return ScoringApp(model, max_request_mb=max_request_mb, timeout=timeout, batching=batching, warm_up=warm_up)
