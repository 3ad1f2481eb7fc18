"""What happens around one patched training call: the run, the guard, containment, the report.

:func:`call_patched` is the heart of every integration. For the outermost patched call it:

1. finds the run to log into: the user's active run, or a new run it opens (tagged
   ``mlflow.autologging=<integration>``) and closes (FINISHED, FAILED if training raised,
   KILLED on KeyboardInterrupt);
2. sets a ``ContextVar`` guard so nested patched calls (Pipeline steps, search clones, ``fit``
   calling ``partial_fit``) just run the original;
3. runs the integration's ``before`` hook, the original exactly once with the caller's
   arguments, then the ``after`` hook; the original's result and exceptions pass through
   untouched;
4. contains every exception of ours: a warning naming the integration (which then switches itself
   off for the process), or re-raised in strict mode (``FITSCRIBE_STRICT=1``, set by our tests);
5. writes the ``fitscribe.autolog.report.json`` artifact: what was logged, what was skipped, why.
"""

from __future__ import annotations

import os
import time
import warnings
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from fitscribe.config import ENV_STRICT
from fitscribe.errors import FitscribeWarning
from fitscribe.validation import MAX_TAG_VALUE_LENGTH

if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.autolog._config import AutologConfig, Integration
    from fitscribe.client import Client

__all__ = ["TrainingCall", "call_patched", "strict_mode", "contain", "REPORT_FILE", "is_global_rank_zero"]

REPORT_FILE = "fitscribe.autolog.report.json"
_ACTIVE: ContextVar["TrainingCall | None"] = ContextVar("fitscribe_autolog_call", default=None)
_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "JSM_NAMESPACE_RANK")


class _Deferred:
    """One background thread finishing autologged runs (plots, report, run end) after fit returns.

    Every job is counted in :mod:`fitscribe._pending` from ``submit`` until it is done, so every
    ``Client`` read waits for it (read-your-writes); the thread's own reads do not wait. ``wait()``
    blocks until everything submitted so far is done; ``fitscribe.flush()`` and interpreter exit
    call it. A forked child starts with an empty finisher (:meth:`reset`).
    """

    def __init__(self) -> None:
        self._exit_hook = False
        self.reset()

    def reset(self) -> None:
        """Forget the queue, the count and the thread (in a forked child, which has no thread)."""
        import threading

        self._cond = threading.Condition()
        self._jobs: list[Callable[[], None]] = []
        self._thread: Any = None

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` to run on the background thread."""
        from fitscribe import _pending

        _pending.add()
        try:
            with self._cond:
                self._jobs.append(job)
                if self._thread is None or not self._thread.is_alive():
                    self._start()
                self._cond.notify_all()
        except BaseException:
            _pending.done()
            raise

    def _start(self) -> None:
        import atexit
        import threading

        if not self._exit_hook:
            self._exit_hook = True
            # Before atexit handlers (which close stores and journals): at thread shutdown.
            register = getattr(threading, "_register_atexit", None)
            try:
                register(self.wait) if register is not None else atexit.register(self.wait)
            except RuntimeError:  # the interpreter is already shutting down
                atexit.register(self.wait)
        self._thread = threading.Thread(target=self._loop, name="fitscribe-autolog", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from fitscribe import _pending

        import threading

        with _pending.working():
            try:
                while True:
                    with self._cond:
                        while not self._jobs:
                            if not self._cond.wait(timeout=5.0) and not self._jobs:
                                self._thread = None
                                return
                        job = self._jobs.pop(0)
                    self._run(job)
            finally:
                with self._cond:  # dying of an error (a warning made an error): a new thread takes over
                    if self._jobs and self._thread is threading.current_thread():
                        self._start()

    def _run(self, job: Callable[[], None]) -> None:
        from fitscribe import _pending

        try:
            job()
        except BaseException as exc:  # a job's own steps are contained; this is a last resort
            warnings.warn(f"fitscribe autolog could not finish a run in the background: {exc}", FitscribeWarning, stacklevel=1)
        finally:
            _pending.done()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until all submitted jobs are done; return False on timeout (at once on the thread itself)."""
        from fitscribe import _pending

        return _pending.settle(timeout)


def _abandon_imports_of_other_threads() -> None:
    """In a forked child: forget the modules other threads (gone in the child, the finisher among
    them: its plots import matplotlib and PIL) were still importing at the fork.

    Left as they are, importing such a module again in the child waits forever on the dead
    thread's module lock, or yields the half-initialized module (``partially initialized module
    'PIL.Image' has no attribute 'core'``). Forgotten, the child's next import loads them afresh.
    The forking thread's own imports in progress are kept. Best effort: no-op if the import
    system's internals differ.
    """
    import sys
    import threading

    try:
        from importlib import _bootstrap

        locks = _bootstrap._module_locks  # type: ignore[attr-defined]
        me = threading.get_ident()
        for name, ref in list(locks.items()):
            lock = ref()
            owner = getattr(lock, "owner", None)
            if lock is None or owner is None or owner == me or not getattr(lock, "count", 0):
                continue
            locks.pop(name, None)
            module = sys.modules.get(name)
            if getattr(getattr(module, "__spec__", None), "_initializing", False):
                del sys.modules[name]
    except Exception:  # pragma: no cover - a reset must never break the child
        pass


DEFERRED = _Deferred()
"""The background finisher of autologged runs."""
if hasattr(os, "register_at_fork"):  # a forked child has no finisher thread: never wait for one
    os.register_at_fork(after_in_child=DEFERRED.reset)
    os.register_at_fork(after_in_child=_abandon_imports_of_other_threads)


def strict_mode() -> bool:
    """Return True when autolog must re-raise its own errors (``FITSCRIBE_STRICT=1``)."""
    return os.environ.get(ENV_STRICT, "").strip().lower() in ("1", "true", "yes", "on")


def is_global_rank_zero() -> bool:
    """Return False in a distributed worker whose global rank is not 0 (read from the environment)."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value) == 0
    return True


def current_call() -> "TrainingCall | None":
    """Return the autologged training call in progress in this context, if any."""
    return _ACTIVE.get()


class SkippedItem(Exception):
    """Raised by an integration step to skip one item with a reason recorded in the report."""


def contain(integration: "Integration", what: str, exc: BaseException) -> None:
    """Handle an exception raised by our own code: re-raise in strict mode, else warn once and
    switch the integration off for the rest of the process."""
    if strict_mode():
        raise exc
    if not integration.failed:
        integration.failed = True
        if not integration.config.silent:
            warnings.warn(
                f"fitscribe autolog for {integration.name} failed while {what} and is now off for this "
                f"process; your training is not affected. Cause: {type(exc).__name__}: {exc}",
                FitscribeWarning,
                stacklevel=4,
            )


class TrainingCall:
    """The state of one outermost autologged call: its run, its client and its report.

    Attributes:
        integration: The integration whose patch made this call.
        config: The integration's options for this call.
        target: The object being trained (estimator, Booster, Trainer...).
        run_id: The run logged into (set by :meth:`open_run`).
        managed: True when autolog opened the run (and so ends it).
        logged, skipped, notes, timings_ms: What the report says.
        state: Scratch space for the integration (predictions, copies).
        later: Steps deferred until after training (see :meth:`defer`).
    """

    def __init__(self, integration: "Integration", config: "AutologConfig", target: Any) -> None:
        self.integration = integration
        self.config = config
        self.target = target
        self.run_id: str | None = None
        self.managed = False
        self.logged: dict[str, list[str]] = {}
        self.skipped: list[dict[str, str]] = []
        self.notes: list[str] = []
        self.timings_ms: dict[str, float] = {}
        self.state: dict[str, Any] = {}
        self.later: list[tuple[str, Callable[[], Any]]] = []
        self._client: "Client | None" = None

    @property
    def client(self) -> "Client":
        """The client the run was opened with: deferred steps write to the run's store even if
        ``set_tracking_uri`` changed the fluent API's store since."""
        if self._client is None:
            from fitscribe import fluent

            return fluent.get_client()
        return self._client

    def record(self, kind: str, *names: str) -> None:
        """Note items that were logged, for the report."""
        self.logged.setdefault(kind, []).extend(names)

    def skip(self, item: str, reason: str) -> None:
        """Note an item that was not logged, and why."""
        self.skipped.append({"item": item, "reason": reason})

    def step(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one best-effort logging step: a failure is recorded (or raised in strict mode),
        never propagated to training, and never stops the other steps."""
        start = time.perf_counter()
        try:
            return fn()
        except SkippedItem as exc:
            self.skip(what, str(exc))
        except Exception as exc:  # our own failure: contained, reported
            if strict_mode():
                raise
            self.skip(what, f"{type(exc).__name__}: {exc}")
        finally:
            self.timings_ms[what] = round((time.perf_counter() - start) * 1000, 3)
        return None

    def defer(self, what: str, fn: Callable[[], Any]) -> None:
        """Run a best-effort step after training returns, on the background finisher.

        ``fn`` must only use data it owns (copies, predictions), never the user's live objects.
        """
        self.later.append((what, fn))

    def finish(self) -> None:
        """End a successful call: now when nothing is deferred, else in the background."""
        if not self.later:
            self.close_run("FINISHED")
            return
        if self.managed:
            from fitscribe import fluent

            fluent._detach_run(self.run_id)  # the user's code goes on without this run being current

        def job() -> None:
            try:  # a step raising (strict mode) must not leave the run RUNNING: end it, then raise
                for what, fn in self.later:
                    self.step(what, fn)
            finally:
                self.close_run("FINISHED", detached=True)

        DEFERRED.submit(job)

    def report(self) -> dict[str, Any]:
        """Return the report written as the run's ``fitscribe.autolog.report.json`` artifact."""
        from fitscribe import __version__

        return {
            "integration": self.integration.name,
            "fitscribe_version": __version__,
            "target": f"{type(self.target).__module__}.{type(self.target).__qualname__}",
            "managed_run": self.managed,
            "logged": self.logged,
            "skipped": self.skipped,
            "notes": self.notes,
            "timings_ms": self.timings_ms,
        }

    # -- run lifecycle ------------------------------------------------------------------------

    def open_run(self) -> None:
        """Use the active run, or start one tagged with the integration's name."""
        from fitscribe import fluent

        active = fluent.active_run()
        if active is not None:
            self.run_id = active.info.run_id
            self._client = fluent._client_for_current()
            return
        tags = {"mlflow.autologging": self.integration.name}
        for key, value in (self.config.extra_tags or {}).items():
            if key == "mlflow.autologging":
                self.notes.append("extra_tags key 'mlflow.autologging' is reserved and was ignored")
                continue
            text = str(value)
            if len(text) > MAX_TAG_VALUE_LENGTH:
                self.notes.append(f"extra tag {key!r} truncated from {len(text)} to {MAX_TAG_VALUE_LENGTH} characters")
                text = text[:MAX_TAG_VALUE_LENGTH]
            tags[key] = text
        run = fluent.start_run(tags=tags)
        self.run_id = run.info.run_id
        self.managed = True
        self._client = fluent._client_for_current()

    def close_run(self, status: str, detached: bool = False) -> None:
        """Write the report, then end the run if autolog opened it."""
        from fitscribe import fluent

        if self.run_id is None:
            return
        try:
            self.client.log_dict(self.run_id, self.report(), _report_name(self.run_id))
        except Exception as exc:  # the report must not hide the training result
            if strict_mode():
                raise
            warnings.warn(f"fitscribe autolog could not write its report: {exc}", FitscribeWarning, stacklevel=3)
        if self.managed:
            active = None if detached else fluent.active_run()
            if active is not None and active.info.run_id == self.run_id:
                fluent.end_run(status)
            else:
                self.client.set_terminated(self.run_id, status)
                self.client.flush()


_REPORTS: dict[str, int] = {}


def _report_name(run_id: str) -> str:
    """``fitscribe.autolog.report.json``; a second autologged call into the same (user) run writes
    ``fitscribe.autolog.report-2.json`` and so on, so no report overwrites another."""
    count = _REPORTS.get(run_id, 0) + 1
    _REPORTS[run_id] = count
    if len(_REPORTS) > 10_000:
        _REPORTS.clear()
        _REPORTS[run_id] = count
    return REPORT_FILE if count == 1 else REPORT_FILE.replace(".json", f"-{count}.json")


def _should_log(integration: "Integration") -> bool:
    if not integration.enabled or integration.failed or _ACTIVE.get() is not None:
        return False
    if integration.disabled_here():
        return False
    if not is_global_rank_zero():
        return False
    if integration.config.exclusive:
        from fitscribe import fluent

        return fluent.active_run() is None
    return True


def call_patched(
    integration: "Integration",
    original: Callable[..., Any],
    target: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    before: Callable[[TrainingCall], None] | None = None,
    after: Callable[[TrainingCall, Any], None] | None = None,
) -> Any:
    """Call ``original(*args, **kwargs)`` with autologging around it (see the module docstring)."""
    if not _should_log(integration):
        return original(*args, **kwargs)
    from fitscribe import _pending

    call = TrainingCall(integration, integration.config, target)
    token = _ACTIVE.set(call)
    try:
        try:
            with _pending.working():  # our own reads need not wait for earlier calls' background work
                call.open_run()
                if before is not None:
                    before(call)
        except Exception as exc:  # our preamble failed: train without autolog
            _abandon(call, exc, "preparing to log")
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as user_exc:
            with _pending.working():
                _close_after_user_error(call, "KILLED" if isinstance(user_exc, KeyboardInterrupt) else "FAILED", user_exc)
            raise
        with _pending.working():
            _after_training(call, after, result)
        return result
    finally:
        _ACTIVE.reset(token)


def _after_training(call: TrainingCall, after: Callable[[TrainingCall, Any], None] | None, result: Any) -> None:
    """Log what training produced, then end the call (in the background when work is deferred)."""
    status = "FINISHED"
    try:
        if after is not None:
            after(call, result)
    except Exception as exc:
        status = _after_failed(call, exc)
    if status == "FINISHED":
        call.finish()
    else:
        call.close_run(status)


def _close_after_user_error(call: TrainingCall, status: str, user_exc: BaseException) -> None:
    """End the run after the user's training raised; the user's exception must come out unchanged.

    Our own failure here becomes a warning; in strict mode it is raised, chained to the user's.
    """
    try:
        call.close_run(status)
    except Exception as ours:
        if strict_mode():
            raise ours from user_exc
        warnings.warn(
            f"fitscribe autolog for {call.integration.name} could not end run {call.run_id} as {status} "
            f"after training raised {type(user_exc).__name__}: {type(ours).__name__}: {ours}",
            FitscribeWarning,
            stacklevel=4,
        )


def _abandon(call: TrainingCall, exc: Exception, what: str) -> None:
    try:
        if call.managed:
            call.close_run("FINISHED")
    finally:
        contain(call.integration, what, exc)


def _after_failed(call: TrainingCall, exc: Exception) -> str:
    if strict_mode():
        call.close_run("FINISHED")
        raise exc
    call.skip("after training", f"{type(exc).__name__}: {exc}")
    contain(call.integration, "logging after training", exc)
    return "FINISHED"
