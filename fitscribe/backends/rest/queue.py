"""The REST store's write queue: metrics, params and tags sent in the background as log-batch requests.

``log_metric`` and ``log_batch`` only append to a bounded in-memory queue. A sender thread wakes
every ``interval`` (50 ms), or as soon as a full batch is waiting, and sends what is queued as
``runs/log-batch`` requests within MLflow's limits (1000 metrics, 100 params, 100 tags, 1000 items
per request), oldest first, one run per request.

Failures:

- The server refuses a batch (a 4xx: a param changed value, the run was deleted...): the error is
  kept and :meth:`WriteQueue.flush` raises it with the server's message. Metrics travel apart from
  params and tags, and a refused batch of params and tags is sent again item by item, so only the
  offending items are lost. A journaled batch the server answers with a 5xx three times in a row
  (while ``/health`` answers) is reported the same way instead of holding up the journal.
- The server is unreachable, overloaded or failing (connection errors, 429, 5xx): the request is
  retried with backoff for up to ``outage_budget`` seconds (3 s). After that the queue goes
  *offline*: what is unsent goes to the local journal (:mod:`.journal`), and so does everything
  logged afterwards, so the training loop never waits on the server. Once a second the sender
  checks whether the server answers (``/health``) and, when it does, replays the journal and goes
  back online. A flush checks at once.

The queue holds at most ``max_pending`` points; a producer finding it full waits for the sender
(which either sends or journals) for at most ``max_block`` seconds, then goes on anyway.

Exactly once: every log-batch body gets a random id when it is built, kept with it in the journal
and sent as the ``X-Fitscribe-Request-Id`` header. A fitscribe server records the ids of the batches
it applied in the same transaction, so a batch sent again after its answer was lost (a timeout, a
server killed after committing) is not stored twice. Other requests queued here (the ``runs/update``
ending a run while the server is down) are idempotent and travel in order after the batches queued
before them.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable, Sequence

from fitscribe.backends.journal_core import close_at_child_exit, reset_after_fork, wait_for_room
from fitscribe.errors import BackendError, FitscribeError

from fitscribe.wire import metric_row_to_json
from .http import IDEMPOTENT, RETRY_BUDGET_S, HttpSession, ServerUnavailableError, is_transient
from .journal import RestJournal

__all__ = ["WriteQueue", "MAX_METRICS", "MAX_PARAMS", "MAX_TAGS", "MAX_ITEMS", "build_bodies",
           "REQUEST_ID_HEADER", "ID_KEY", "ENDPOINT_KEY"]

MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ITEMS = 1000, 100, 100, 1000
"""MLflow's log-batch limits per request."""
MAX_PENDING_POINTS = 200_000
MAX_KEPT_ERRORS = 100
POISON_ATTEMPTS = 3
REQUEST_ID_HEADER = "X-Fitscribe-Request-Id"
ID_KEY, ENDPOINT_KEY = "_id", "_endpoint"
"""Keys of a queued body that are not sent in it: its request id, and its endpoint when it is not
``runs/log-batch`` (MLflow's fields never start with ``_``)."""

MetricRow = tuple  # (run_id, key, value, timestamp, step)
KeyValues = Sequence[tuple[str, str]]


def _run_bodies(run_id: str, metrics: list[MetricRow], params: dict[tuple[str, str], None],
                tags: dict[str, str]) -> list[dict[str, Any]]:
    """Split one run's items into log-batch bodies within MLflow's limits.

    Metrics and params/tags go in separate requests, so a param the server refuses (it changed
    value) costs no metric: the server applies or refuses a request as a whole.
    """
    bodies: list[dict[str, Any]] = []
    for start in range(0, len(metrics), MAX_METRICS):
        chunk = metrics[start:start + MAX_METRICS]
        bodies.append({ID_KEY: new_request_id(), "run_id": run_id,
                       "metrics": [metric_row_to_json(*row[1:]) for row in chunk]})
    param_items, tag_items = list(params), list(tags.items())
    for start in range(0, max(len(param_items), len(tag_items)), MAX_PARAMS):
        body: dict[str, Any] = {ID_KEY: new_request_id(), "run_id": run_id}
        chunk_p, chunk_t = param_items[start:start + MAX_PARAMS], tag_items[start:start + MAX_TAGS]
        if chunk_p:
            body["params"] = [{"key": k, "value": val} for k, val in chunk_p]
        if chunk_t:
            body["tags"] = [{"key": k, "value": val} for k, val in chunk_t]
        bodies.append(body)
    return bodies


def new_request_id() -> str:
    """Return a new random request id (32 hex digits)."""
    return uuid.uuid4().hex


def build_bodies(metrics: Sequence[MetricRow], others: Sequence[tuple[str, KeyValues, KeyValues]]) -> list[dict[str, Any]]:
    """Group queued items by run, in order, into log-batch request bodies.

    Exact duplicate params are sent once; for a tag set several times, the last value is sent.
    """
    runs: dict[str, tuple[list[MetricRow], dict[tuple[str, str], None], dict[str, str]]] = {}
    for row in metrics:
        runs.setdefault(row[0], ([], {}, {}))[0].append(row)
    for run_id, params, tags in others:
        _, run_params, run_tags = runs.setdefault(run_id, ([], {}, {}))
        run_params.update(dict.fromkeys(params))
        for key, value in tags:
            run_tags.pop(key, None)
            run_tags[key] = value
    return [body for run_id, (m, p, t) in runs.items() for body in _run_bodies(run_id, m, p, t)]


def split_body(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a refused params/tags body into one body per item, to store the items that are fine.

    Returns ``[]`` for a body that cannot be split further (one item, or metrics: those are refused
    together, for a reason that applies to all of them, such as a deleted run).
    """
    items = [("params", item) for item in body.get("params") or ()] + [("tags", item) for item in body.get("tags") or ()]
    if body.get("metrics") or len(items) < 2:
        return []
    return [{ID_KEY: new_request_id(), "run_id": body.get("run_id"), kind: [item]} for kind, item in items]


def _describe(body: dict[str, Any]) -> str:
    if ENDPOINT_KEY in body:
        return f"the request {body[ENDPOINT_KEY]} for run {body.get('run_id')}"
    counts = ", ".join(f"{len(body[k])} {k}" for k in ("metrics", "params", "tags") if body.get(k))
    return f"a batch of {counts or 'nothing'} for run {body.get('run_id')}"


class WriteQueue:
    """Queued writes to one tracking server and the thread sending them.

    Args:
        session: Where to send.
        journal: Where to keep what cannot be sent.
        on_rejected: Called with each body the server refused (after the error is kept).
        interval: Seconds between sends.
        outage_budget: Seconds of retrying before going offline.
        max_pending: Points queued before producers wait.
        max_block: Most seconds a producer waits for room.
        probe_interval: Seconds between checks of an offline server.
    """

    def __init__(self, session: HttpSession, journal: RestJournal, *,
                 on_rejected: Callable[[dict[str, Any]], None] | None = None, interval: float = 0.05,
                 outage_budget: float = RETRY_BUDGET_S, max_pending: int = MAX_PENDING_POINTS,
                 max_block: float = 5.0, probe_interval: float = 1.0, request_timeout: float = 15.0) -> None:
        self.session = session
        self.journal = journal
        self.interval = interval
        self.outage_budget = outage_budget
        self.max_pending = max_pending
        self.max_block = max_block
        self.probe_interval = probe_interval
        self.request_timeout = request_timeout
        self._on_rejected = on_rejected
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._metrics: list[MetricRow] = []
        self._others: list[tuple[str, KeyValues, KeyValues]] = []
        self._requests: list[dict[str, Any]] = []  # other queued requests (ENDPOINT_KEY), in order
        self._stash: list[dict[str, Any]] = []  # bodies the journal could not take
        self._resend: list[dict[str, Any]] = []  # parts of a refused batch, to send one by one
        self._requested = self._completed = 0
        self._errors: list[FitscribeError] = []
        self._offline_since: float | None = None
        self._offline_cause: object = None
        self._last_probe = 0.0
        self._thread: threading.Thread | None = None
        self._stop = False
        self._busy = False  # the sender holds items it has not sent or journaled yet
        self._server_failures = 0  # consecutive 5xx answers to the same journaled batch
        self._outages = 0
        self._exit_hook_pid = 0  # the process whose exit hook is set (see start)
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: start empty (the parent sends what it queued) with fresh locks, no sender."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._metrics, self._others, self._requests, self._stash, self._resend = [], [], [], [], []
        self._requested = self._completed = 0
        self._errors, self._thread, self._busy, self._stop = [], None, False, False

    # -- producers -------------------------------------------------------------------------------
    def put_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        """Queue one metric point (already validated)."""
        with self._lock:
            self._metrics.append((run_id, key, value, timestamp, step))
            count = len(self._metrics)
        if count % MAX_METRICS == 0 or self._thread is None:
            self._nudge(count)

    def put(self, run_id: str, metrics: Sequence[MetricRow] = (), params: KeyValues = (), tags: KeyValues = ()) -> None:
        """Queue metric rows ``(run_id, key, value, timestamp, step)``, params and tags of one run."""
        with self._lock:
            self._metrics.extend(metrics)
            if params or tags:
                self._others.append((run_id, params, tags))
            count = len(self._metrics)
        self._nudge(count)

    def put_request(self, endpoint: str, body: dict[str, Any]) -> None:
        """Queue an idempotent POST (e.g. ``runs/update``), sent after everything queued before it."""
        with self._lock:
            self._requests.append({ENDPOINT_KEY: endpoint, **body})
        self._nudge(0)

    def mark_offline(self, cause: BaseException) -> None:
        """Take the server as unreachable (a caller gave up on it): queued items go to the journal
        until it answers ``/health`` again, without another round of retries."""
        if self._offline_since is None:
            self._go_offline(cause)

    def _nudge(self, count: int) -> None:
        """Start the sender if needed; wake it for a full batch; wait while the queue is full."""
        if not self._running():
            try:
                self.start()
            except RuntimeError:  # no new threads at interpreter shutdown: drain() sends from its caller
                return
        if count >= MAX_METRICS:
            self._wake.set()
        if count >= self.max_pending:
            with self._changed:  # past max_block, go on anyway: the sender journals what it cannot send
                wait_for_room(self._changed, lambda: len(self._metrics) >= self.max_pending and self._running(),
                              self.max_block)

    # -- control ---------------------------------------------------------------------------------
    @property
    def outages(self) -> int:
        """How many times the queue went offline (to report each outage once)."""
        return self._outages

    @property
    def online(self) -> bool:
        """False once the server stayed unreachable past the retry budget, until it answers again."""
        return self._offline_since is None

    def _running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the sender thread (it first adopts orphaned journals of this server)."""
        with self._lock:
            if self._running():
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="fitscribe-rest-sender", daemon=True)
            self._thread.start()
            if self._exit_hook_pid != os.getpid():  # a multiprocessing child skips atexit: send at its end
                self._exit_hook_pid = os.getpid()
                close_at_child_exit(self, self.close)

    def drain(self, force: bool = False) -> None:
        """Wait until everything queued so far was sent or journaled (errors stay for :meth:`flush`).

        Args:
            force: Run a full cycle even with nothing queued (adopting and replaying journals).
        """
        if not self._running():
            if self._metrics or self._others or self._requests or self._stash:
                self._step()  # no sender thread (interpreter shutdown): send or journal from here
            return
        with self._lock:
            idle = not (self._metrics or self._others or self._requests or self._busy or self._stash)
            if idle and not force and not self.journal.pending_bytes():
                return  # nothing queued or in flight
            self._requested += 1
            wanted = self._requested
        self._wake.set()
        with self._changed:
            while self._completed < wanted and self._running():
                self._changed.wait(0.1)

    def flush(self, raise_waiting: bool = True) -> None:
        """Send everything queued (and the journal, if the server answers); report what failed.

        Args:
            raise_waiting: Raise when items wait for an unreachable server (else see :meth:`waiting`).

        Raises:
            FitscribeError: The first batch the server refused since the last flush (the server's
                message, e.g. ``InvalidValueError`` for a param that changed value).
            ServerUnavailableError: The server is unreachable; the items are in the journal.
        """
        try:
            self.start()
        except RuntimeError:  # no new threads at interpreter shutdown: send from this thread
            with self._lock:
                self._requested += 1
            self._step()
        self.drain(force=True)
        if raise_waiting:
            self.raise_errors()
        else:
            self.raise_refused()

    def raise_errors(self) -> None:
        """Raise the first refused batch's error (once), else an error if items wait in the journal."""
        self.raise_refused()
        if self.waiting():
            raise ServerUnavailableError(self.offline_message())

    def raise_refused(self) -> None:
        """Raise the error of the first batch the server refused since the last report, if any."""
        errors = self.take_errors()
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.args = (f"{first} (and {len(errors) - 1} more refused batch(es), e.g.: {errors[1]})",)
            raise first

    def waiting(self) -> bool:
        """Return True when items wait for an offline server (in the journal, or in memory)."""
        if self._stash:
            return True
        return self._offline_since is not None and self.journal.pending_bytes() > 0

    def offline_message(self) -> str:
        """Describe what is waiting in the journal, and why."""
        where = self.journal.path or self.journal.folder
        held = f"{len(self._stash)} batch(es) in memory (the journal could not be written) and " if self._stash else ""
        return (f"The tracking server {self.session.base_url} is unreachable ({self._offline_cause}); "
                f"{held}{self.journal.pending_bytes() / 1000:.1f} kB of unsent metrics, params and tags wait in the journal "
                f"{where}. They are sent once the server answers: by this store's next flush, by the next process "
                f"logging to this server, or now with: fitscribe sync --tracking-uri {self.session.base_url}")

    def close(self) -> str | None:
        """Send or journal what is queued, stop the sender and release the journal files.

        Returns:
            None, or a message saying what waits in the journal (the server is unreachable).
        """
        if self._running():
            self.drain()
            self._stop = True
            self._wake.set()
            assert self._thread is not None
            self._thread.join(self.outage_budget + self.request_timeout + 5)
        else:
            self.drain()  # items queued with no sender thread: sent or journaled from here
        self._thread = None
        waiting = self.offline_message() if self.waiting() else None
        self.journal.release()
        return waiting

    def take_errors(self) -> list[FitscribeError]:
        """Return and forget the errors not yet raised by a flush."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    # -- the sender thread ----------------------------------------------------------------------
    def _run(self) -> None:
        self._adopt()
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._step():
                return

    def _step(self) -> bool:
        """Take what is queued and send it; return True when the sender should stop."""
        with self._changed:
            seq, stop = self._requested, self._stop
            metrics, self._metrics = self._metrics, []
            others, self._others = self._others, []
            requests, self._requests = self._requests, []
            self._busy = True
            self._changed.notify_all()
        try:
            self._cycle(build_bodies(metrics, others) + requests, forced=seq > self._completed or stop)
        except Exception as exc:  # a bug here must not kill the thread and lose later items
            self._keep_error(BackendError(f"The REST store's sender failed: {type(exc).__name__}: {exc}"))
        with self._changed:
            self._busy = False
            self._completed = max(self._completed, seq)
            self._changed.notify_all()
            return stop and not self._metrics and not self._others and not self._requests

    def _adopt(self) -> None:
        try:
            self.journal.adopt_orphans()
        except OSError:
            pass  # an unreadable journal folder: nothing to adopt

    def _cycle(self, new: list[dict[str, Any]], forced: bool) -> None:
        """Send the journal, then the new bodies; journal whatever cannot be sent."""
        bodies = self._stash + new
        self._stash = []
        if self._offline_since is not None and not self._probe(forced):
            self._to_journal(bodies)
            return
        if forced:
            self._adopt()
        if not self._replay():
            self._to_journal(bodies)
            return
        work = deque(self._resend + bodies)
        self._resend = []
        while work:
            body = work.popleft()
            if not self._send(body):
                self._to_journal([body, *work])
                return
            work.extendleft(reversed(self._resend))  # the parts of a refused batch, sent one by one
            self._resend = []

    def _probe(self, forced: bool) -> bool:
        """Return True (and go online) when the offline server answers again; checks once a second."""
        now = time.monotonic()
        if not forced and now - self._last_probe < self.probe_interval:
            return False
        self._last_probe = now
        try:
            answer = self.session.client.get(f"{self.session.base_url}/health", timeout=self.session.connect_timeout)
        except Exception as exc:  # any transport error: still offline
            self._offline_cause = f"{type(exc).__name__}: {exc}"
            return False
        if answer.status_code >= 500:
            return False
        self._offline_since = None
        return True

    def _replay(self) -> bool:
        """Send the journal; False if the server went away meanwhile."""
        try:
            self.journal.replay(self._post, self._worth_retrying, self._reject,
                                lambda message: self._keep_error(BackendError(message)))
        except ServerUnavailableError as exc:
            self._go_offline(exc)
            return False
        except OSError as exc:
            self._keep_error(BackendError(f"Could not read the journal in {self.journal.folder}: {exc}"))
        return True

    def _post(self, body: dict[str, Any]) -> None:
        """Send one queued body once: to its endpoint, with its request id as a header."""
        request_id, endpoint = body.get(ID_KEY), body.get(ENDPOINT_KEY, "runs/log-batch")
        payload = {k: val for k, val in body.items() if k != ID_KEY and k != ENDPOINT_KEY}
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        self.session.call("POST", endpoint, payload, retry=None, timeout=self.request_timeout, headers=headers)
        self._server_failures = 0

    def _worth_retrying(self, exc: Exception) -> bool:
        """Tell a journaled batch worth sending again later from one to report and drop.

        A server that answers but fails on the same batch (HTTP 500, 502, 504) three times in a row
        is failing on that batch, not down: the batch is reported, so it does not hold up the rest.
        """
        if not is_transient(exc, IDEMPOTENT):
            return False
        status = getattr(exc, "status", None)
        if status is None or status in (429, 503):
            return True
        self._server_failures += 1
        return self._server_failures < POISON_ATTEMPTS

    def _send(self, body: dict[str, Any]) -> bool:
        """Send one body, retrying transient failures within the outage budget; False: went offline."""
        first_failure: float | None = None
        delay = 0.05
        while True:
            try:
                self._post(body)
                return True
            except ServerUnavailableError as exc:
                now = time.monotonic()
                first_failure = first_failure if first_failure is not None else now
                if now + delay - first_failure > self.outage_budget:
                    self._go_offline(exc)
                    return False
            except FitscribeError as exc:
                self._reject(body, exc)
                return True
            time.sleep(delay)
            delay = min(delay * 2, 0.8)

    def _go_offline(self, cause: BaseException) -> None:
        self._outages += 1
        self._offline_since = time.monotonic()
        self._last_probe = self._offline_since
        self._offline_cause = cause

    def _to_journal(self, bodies: list[dict[str, Any]]) -> None:
        try:
            self.journal.append(bodies)
        except OSError as exc:
            self._stash = bodies + self._stash
            self._offline_cause = f"{self._offline_cause}; and the journal cannot be written: {exc}"

    def _reject(self, body: dict[str, Any], exc: Exception) -> None:
        """Handle a batch the server refused for good: params and tags are sent again one by one
        (so one bad param does not cost the others); otherwise the error is kept for the next flush."""
        parts = split_body(body)
        if parts:
            self._resend.extend(parts)
            return
        message = f"{exc} The server refused {_describe(body)}; those items were not stored."
        error = type(exc)(message) if isinstance(exc, FitscribeError) else BackendError(message)
        self._keep_error(error)
        if self._on_rejected is not None:
            self._on_rejected(body)

    def _keep_error(self, error: FitscribeError) -> None:
        with self._lock:
            if len(self._errors) < MAX_KEPT_ERRORS:
                self._errors.append(error)
