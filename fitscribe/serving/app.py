"""The scoring server's ASGI app: ``/invocations``, ``/ping``, ``/health`` and ``/version``.

The routes and answers are those of ``mlflow models serve`` (reference: MLflow's scoring
protocol), so clients and load balancers written for MLflow work unchanged. Where MLflow answers
500 for a client's mistake (a missing Content-Type), this server answers 4xx: a 5xx here means the
server itself failed.

Prediction runs on a worker thread with a time limit (504 past it, as MLflow); the body is read
with a size limit (413). Errors never carry file paths of the server.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import TYPE_CHECKING, Any

from fitscribe.serving.batching import Batcher
from fitscribe.serving.protocol import (
    ScoringError,
    check_params,
    content_kind,
    encode_predictions,
    parse_csv,
    parse_json,
    parse_parquet,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from fitscribe.flavors.pyfunc import PyFuncModel

__all__ = ["create_scoring_app", "DEFAULT_MAX_REQUEST_MB", "DEFAULT_TIMEOUT_S"]

DEFAULT_MAX_REQUEST_MB = 64
DEFAULT_TIMEOUT_S = 60.0
_LOG = logging.getLogger("fitscribe.serving")


class _Scorer:
    """Turns one request into predictions with one loaded model."""

    def __init__(self, model: "PyFuncModel", max_bytes: int, timeout: float) -> None:
        self.model = model
        self.signature = model.signature
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def read_body(self, request: "Request") -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            raise ScoringError(f"The request body is larger than this server's limit of {self.max_bytes} bytes.", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise ScoringError(f"The request body is larger than this server's limit of {self.max_bytes} bytes.", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    def parse(self, kind: str, body: bytes) -> tuple[Any, dict[str, Any] | None]:
        if kind == "json":
            data, params = parse_json(body, self.signature)
        elif kind == "csv":
            data, params = parse_csv(body), None
        else:
            data, params = parse_parquet(body), None
        checked, ignored = check_params(params, self.signature)
        if ignored:
            _LOG.warning("ignoring params the model's signature does not declare: %s", ", ".join(ignored))
        return data, checked

    def predict(self, data: Any, params: dict[str, Any] | None) -> bytes:
        """Predict on a worker thread; a refusal of the signature or the model becomes a 400."""
        from fitscribe.flavors.signature import SchemaError

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


class _Unbatched:
    """Every request predicted on its own worker thread."""

    def __init__(self, scorer: _Scorer) -> None:
        self.scorer = scorer

    async def predict(self, data: Any, params: dict[str, Any] | None) -> bytes:
        import anyio

        return await anyio.to_thread.run_sync(self.scorer.predict, data, params, abandon_on_cancel=True)


def create_scoring_app(model: "PyFuncModel", *, max_request_mb: float = DEFAULT_MAX_REQUEST_MB,
                       timeout: float = DEFAULT_TIMEOUT_S, batching: bool = True) -> "Starlette":
    """Build the scoring server for one loaded model.

    Args:
        model: The model, as returned by :func:`fitscribe.pyfunc.load_model`.
        max_request_mb: Larger request bodies are refused with 413.
        timeout: Seconds a prediction may take before the request answers 504.
        batching: Predict the rows of requests that queue up during a prediction together
            (scikit-learn and XGBoost DataFrame input; see :mod:`fitscribe.serving.batching`).

    Returns:
        A Starlette application; serve it with uvicorn (``fitscribe models serve`` does).
    """
    import anyio
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from fitscribe import __version__

    scorer = _Scorer(model, int(max_request_mb * 1024 * 1024), timeout)
    batcher = Batcher(scorer) if batching else _Unbatched(scorer)

    def error(exc: ScoringError) -> "Response":
        import json

        return Response(json.dumps(exc.to_json()), status_code=exc.status, media_type="application/json")

    async def invocations(request: "Request") -> "Response":
        start = time.perf_counter()
        try:
            kind = content_kind(request.headers.get("content-type"))
            body = await scorer.read_body(request)
            data, params = scorer.parse(kind, body)
            with anyio.fail_after(scorer.timeout):
                payload = await batcher.predict(data, params)
        except ScoringError as exc:
            return error(exc)
        except TimeoutError:
            return PlainTextResponse(f"The prediction took longer than {scorer.timeout:g} s.", status_code=504)
        _LOG.debug("invocation in %.2f ms", (time.perf_counter() - start) * 1000)
        return Response(payload, media_type="application/json")

    async def ping(request: "Request") -> "Response":
        return Response("\n", media_type="application/json")

    async def version(request: "Request") -> "Response":
        return Response(__version__, media_type="application/json")

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.model = model
    return app
