"""Adaptive batching: requests that arrive while a prediction runs are predicted together in one call.

Why (measured, benchmarks/serving.py): a scikit-learn ``predict`` on a one-row DataFrame costs about
0.6 ms of CPU whatever the row count (input validation), three quarters of a request's cost. With
several clients, the rows that queued up during one prediction are concatenated and predicted in
one call, which shares that fixed cost among them. Nothing waits for a batch to fill: a lone
request is predicted at once, so there is no added latency (the technique of BentoML's adaptive
batching and Ray Serve's ``@serve.batch``, without their wait window).

Only inputs that are safe to combine are batched: DataFrames, without params, for flavors whose
predictions are one per row (scikit-learn, XGBoost), when every queued frame has the same columns.
Each request's input is checked against the signature on its own (its error is its own 400); if
the combined prediction fails or does not return one prediction per row, every request of the
batch is predicted alone, so a bad row only fails its own request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fitscribe.serving.protocol import ScoringError, encode_predictions

if TYPE_CHECKING:
    from fitscribe.serving.app import _Scorer

__all__ = ["Batcher", "ROW_WISE_FLAVORS"]

ROW_WISE_FLAVORS = frozenset({"sklearn", "xgboost"})
"""Flavors whose ``predict`` returns one prediction per input row, independent of the other rows."""
MAX_BATCH_ROWS = 2048


class Batcher:
    """Queues batchable requests of one model and predicts what queued up together, on a worker thread."""

    def __init__(self, scorer: "_Scorer") -> None:
        self.scorer = scorer
        self.enabled = scorer.model.flavor in ROW_WISE_FLAVORS
        self._pending: list[tuple[Any, "asyncio.Future[bytes]"]] = []
        self._running = False

    def batchable(self, data: Any, params: dict[str, Any] | None) -> bool:
        """Return True when ``data`` may be predicted together with other requests' rows."""
        return self.enabled and not params and type(data).__name__ == "DataFrame" and len(data) <= MAX_BATCH_ROWS

    async def predict(self, data: Any, params: dict[str, Any] | None) -> bytes:
        """Return the encoded predictions for one request, batched with others when possible."""
        import anyio

        if not self.batchable(data, params):
            return await anyio.to_thread.run_sync(self.scorer.predict, data, params, abandon_on_cancel=True)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending.append((data, future))
        if not self._running:
            self._running = True
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        import anyio

        try:
            while self._pending:
                batch, rows = [], 0
                while self._pending and (not batch or rows + len(self._pending[0][0]) <= MAX_BATCH_ROWS):
                    item = self._pending.pop(0)
                    batch.append(item)
                    rows += len(item[0])
                results = await anyio.to_thread.run_sync(self._run, [data for data, _ in batch])
                for (_, future), result in zip(batch, results):
                    if future.done():
                        continue  # the request timed out meanwhile
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        except BaseException as exc:  # never leave a request waiting forever
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(exc)
            self._pending.clear()
            raise
        finally:
            self._running = False

    def _run(self, inputs: list[Any]) -> list[bytes | BaseException]:
        """Predict a batch: each input checked alone, the good ones predicted in one call."""
        if len(inputs) == 1:
            return [self._alone(inputs[0])]
        from fitscribe.flavors.signature import SchemaError

        signature = self.scorer.signature
        results: list[bytes | BaseException | None] = [None] * len(inputs)
        checked: list[tuple[int, Any]] = []
        for i, data in enumerate(inputs):
            try:
                checked.append((i, signature.enforce(data) if signature is not None else data))
            except SchemaError as exc:
                results[i] = ScoringError(f"The input does not match the model's signature: {exc}", 400,
                                          "INVALID_PARAMETER_VALUE")
        for i, answer in self._together(checked):
            results[i] = answer
        return [r if r is not None else self._alone(inputs[i]) for i, r in enumerate(results)]

    def _together(self, checked: list[tuple[int, Any]]) -> list[tuple[int, bytes]]:
        """Predict the checked frames in one call; an empty list when they cannot be combined."""
        if len(checked) < 2 or len({tuple(frame.columns) for _, frame in checked}) != 1:
            return []
        import pandas as pd

        combined = pd.concat([frame for _, frame in checked], ignore_index=True)
        try:
            predictions = self.scorer.model.predict(combined)
        except Exception:  # one bad row: each request is predicted alone and gets its own error
            return []
        if getattr(predictions, "ndim", 0) < 1 or len(predictions) != len(combined):
            return []
        out, start = [], 0
        for i, frame in checked:
            rows = slice(start, start + len(frame))
            part = predictions.iloc[rows] if hasattr(predictions, "iloc") else predictions[rows]
            out.append((i, encode_predictions(part)))
            start += len(frame)
        return out

    def _alone(self, data: Any) -> bytes | BaseException:
        try:
            return self.scorer.predict(data, None)
        except ScoringError as exc:
            return exc
