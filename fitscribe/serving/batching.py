"""Adaptive batching: requests that arrive while a prediction runs are predicted together in one call.

Why (measured, benchmarks/serving.py): a scikit-learn ``predict`` on a one-row DataFrame costs about
0.6 ms of CPU whatever the row count (input validation), three quarters of a request's cost. With
several clients, the rows that queued up during one prediction are concatenated and predicted in
one call, which shares that fixed cost among them. Nothing waits for a batch to fill: a batch
takes what arrived during the previous prediction and within a few event-loop iterations
(:data:`GATHER_ITERATIONS`, microseconds), so a lone request is predicted at once (the technique
of BentoML's adaptive batching and Ray Serve's ``@serve.batch``, without their wait window).

Only inputs that are safe to combine are batched: DataFrames, without params, for flavors whose
predictions are one per row (scikit-learn, XGBoost), when every queued frame has the same columns.
Each request's input is checked against the signature on its own (its error is its own 400); if
the combined prediction fails or does not return one prediction per row, every request of the
batch is predicted alone, so a bad row only fails its own request.

Where a batch runs: on a worker thread at first, and on the event loop's own thread once the
model has shown that its small batches are quick (:class:`InlinePolicy`). A hop to a worker thread
and back costs more than a one-row scikit-learn prediction's own Python work (a queue, two wake-ups,
the self-pipe write, and both threads taking turns on the GIL), so quick models skip it; a slow
batch sends the model back to worker threads, where the request timeout can abandon it.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import TYPE_CHECKING, Any

from fitscribe.serving.protocol import FloatRows, ScoringError, as_model_input, encode_predictions

if TYPE_CHECKING:
    from fitscribe.serving.app import _Scorer

__all__ = ["Batcher", "InlinePolicy", "ROW_WISE_FLAVORS"]

ROW_WISE_FLAVORS = frozenset({"sklearn", "xgboost"})
"""Flavors whose ``predict`` returns one prediction per input row, independent of the other rows."""
MAX_BATCH_ROWS = 2048
GATHER_ITERATIONS = 3
"""Event-loop iterations a batch waits for requests already received to join it, before predicting.

Measured with benchmarks/serving.py (4 clients, one-row requests, uvloop): with 0 iterations
batches averaged 2.1 requests and the server used 0.63 ms of CPU per request; with 3, 3.8 requests
and 0.47 ms, with p50 latency 2.6 -> 1.8 ms. A lone request waits three idle iterations (~20 us)."""


async def _on_worker_thread(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` on one of anyio's worker threads (daemon threads: a prediction
    abandoned after a timeout does not hold up the server's exit)."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


class InlinePolicy:
    """Decides whether a batch may run on the event loop's thread: only small batches of a model
    whose recent batches were all quick.

    On a worker thread, "quick" is measured in CPU time of that thread (on a busy machine, wall time
    counts the time other processes had the core) and wall-clock time; on the event loop's thread,
    in wall-clock time only (reading a thread's CPU clock is a system call), against a larger
    limit. A model that waits (on a lock, a socket, a sleep) is thus never run on the event loop.

    Args:
        cpu_limit_s: A batch on a worker thread that took more CPU than this is slow.
        wall_limit_s: A batch that took longer than this, anywhere, is slow.
        max_rows: Larger batches always run on a worker thread.
        streak: Quick batches in a row needed (on worker threads) before batches run inline.
    """

    def __init__(self, cpu_limit_s: float = 0.002, wall_limit_s: float = 0.02, max_rows: int = 64,
                 streak: int = 5) -> None:
        self.cpu_limit_s = cpu_limit_s
        self.wall_limit_s = wall_limit_s
        self.max_rows = max_rows
        self.streak = streak
        self._quick = 0

    def inline(self, rows: int) -> bool:
        """Return True when a batch of ``rows`` rows may run on the event loop's thread."""
        return rows <= self.max_rows and self._quick >= self.streak

    def record(self, rows: int, wall_s: float, cpu_s: float = 0.0) -> None:
        """Note how long a batch of ``rows`` rows took (wall clock; CPU of its thread when known)."""
        if cpu_s > self.cpu_limit_s or wall_s > self.wall_limit_s:
            self._quick = 0
        elif rows <= self.max_rows:
            self._quick += 1


class Batcher:
    """Queues batchable requests of one model and predicts what queued up together.

    Args:
        scorer: Parses and predicts for one model.
        batching: False predicts every request alone on a worker thread.
    """

    def __init__(self, scorer: "_Scorer", batching: bool = True) -> None:
        self.scorer = scorer
        self.enabled = batching and scorer.model.flavor in ROW_WISE_FLAVORS
        self.policy = InlinePolicy()
        self._pending: list[tuple[Any, "asyncio.Future[bytes]"]] = []
        self._running = False

    def batchable(self, data: Any, params: dict[str, Any] | None) -> bool:
        """Return True when ``data`` may be predicted together with other requests' rows."""
        return (self.enabled and not params and (type(data) is FloatRows or type(data).__name__ == "DataFrame")
                and len(data) <= MAX_BATCH_ROWS)

    def submit(self, data: Any, params: dict[str, Any] | None) -> "asyncio.Future[bytes]":
        """Return a future of the encoded predictions for one request, batched with others when possible.

        Cancelling the future (a timeout) abandons the request; a prediction already running on a
        worker thread finishes there unseen.
        """
        loop = asyncio.get_running_loop()
        if not self.batchable(data, params):
            return loop.create_task(_on_worker_thread(self.scorer.predict, data, params))
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending.append((data, future))
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        return future

    def _take(self) -> list[tuple[Any, "asyncio.Future[bytes]"]]:
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0][0]) <= MAX_BATCH_ROWS):
            item = self._pending.pop(0)
            if not item[1].done():  # not timed out while queued
                batch.append(item)
                rows += len(item[0])
        return batch

    async def _drain(self) -> None:
        try:
            for _ in range(GATHER_ITERATIONS):
                await asyncio.sleep(0)  # let requests already on the sockets join this batch
            while self._pending:
                batch = self._take()
                if not batch:
                    continue
                inputs = [data for data, _ in batch]
                rows = sum(len(data) for data in inputs)
                if self.policy.inline(rows):
                    results = self._inline(inputs, rows)
                else:
                    results = await _on_worker_thread(self._on_thread, inputs, rows)
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

    def _inline(self, inputs: list[Any], rows: int) -> list[bytes | BaseException]:
        began = time.perf_counter()
        try:
            return self._run(inputs)
        finally:
            self.policy.record(rows, time.perf_counter() - began)

    def _on_thread(self, inputs: list[Any], rows: int) -> list[bytes | BaseException]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return self._run(inputs)
        finally:
            self.policy.record(rows, time.perf_counter() - wall, time.thread_time() - cpu)

    def _run(self, inputs: list[Any]) -> list[bytes | BaseException]:
        """Predict a batch: each input checked alone, the good ones predicted in one call."""
        if len(inputs) == 1:
            return [self._alone(inputs[0])]
        if all(type(data) is FloatRows for data in inputs) and len({tuple(data.columns) for data in inputs}) == 1:
            answers = self._rows_together(inputs)
            return answers if answers is not None else [self._alone(data) for data in inputs]
        inputs = [as_model_input(data) for data in inputs]
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

    def _rows_together(self, inputs: list[FloatRows]) -> list[bytes | BaseException] | None:
        """Predict float rows with the same columns as one DataFrame, checked once; None if that fails.

        The signature check of float columns depends on the column names and on whether all
        values fit the target type, so the combined rows pass it exactly when each request's rows
        do, and become what each request's check would make; when they do not pass, or the model
        refuses the combined rows (a NaN in one request), each request is predicted alone and gets
        its own error.
        """
        import numpy as np

        combined = FloatRows(np.concatenate([data.values for data in inputs]), inputs[0].columns)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictions = self.scorer.model.predict(combined.frame())
        except Exception:
            return None
        return self._split(predictions, [len(data) for data in inputs])

    @staticmethod
    def _split(predictions: Any, lengths: list[int]) -> list[bytes | BaseException] | None:
        """Encode each request's share of the predictions; None unless there is one per row."""
        if getattr(predictions, "ndim", 0) < 1 or len(predictions) != sum(lengths):
            return None
        out: list[bytes | BaseException] = []
        start = 0
        for length in lengths:
            rows = slice(start, start + length)
            out.append(encode_predictions(predictions.iloc[rows] if hasattr(predictions, "iloc") else predictions[rows]))
            start += length
        return out

    def _together(self, checked: list[tuple[int, Any]]) -> list[tuple[int, bytes]]:
        """Predict the checked frames in one call; an empty list when they cannot be combined."""
        if len(checked) < 2 or len({tuple(frame.columns) for _, frame in checked}) != 1:
            return []
        import pandas as pd

        combined = pd.concat([frame for _, frame in checked], ignore_index=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictions = self.scorer.model.predict(combined)
        except Exception:  # one bad row: each request is predicted alone and gets its own error
            return []
        answers = self._split(predictions, [len(frame) for _, frame in checked])
        return [] if answers is None else [(i, answer) for (i, _), answer in zip(checked, answers)]

    def _alone(self, data: Any) -> bytes | BaseException:
        try:
            return self.scorer.predict(data, None)
        except ScoringError as exc:
            return exc
