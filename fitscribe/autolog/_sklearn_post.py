"""Post-training metrics: ``sklearn.metrics`` calls on predictions of an autologged model are logged
to the model's run, e.g. ``accuracy_score_X_test`` (a repeat gets ``-2``, ``-3``...), and
``model.score(X_test, y_test)`` as ``LogisticRegression_score_X_test``; ``metric_info.json`` maps
each key to the call that produced it. Names follow MLflow's.

Unlike MLflow, this also works for metric functions imported before ``autolog()`` was called
(``from sklearn.metrics import accuracy_score`` at the top of a script): scikit-learn's public metric
functions are thin validating wrappers around the real function, held in a closure cell, and it is
that cell's content that is swapped (and put back on ``disable``), so every reference to the public
function sees the change. A function without that shape is patched as a module attribute instead.
"""

from __future__ import annotations

import sys
import threading
import weakref
from contextvars import ContextVar
from typing import Any, Callable

from fitscribe.autolog._session import contain, current_call

__all__ = ["PostTraining"]

_EXCLUDED = {"make_scorer", "get_scorer", "check_scoring", "get_scorer_names"}
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "transform")
_MARK = "__fitscribe_post_training__"


class PostTraining:
    """Links predictions of autologged models to their runs and logs metrics computed on them."""

    def __init__(self, integration: Any) -> None:
        self.integration = integration
        self._models: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
        self._outputs: dict[int, tuple[Any, str, str]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._info: dict[str, dict[str, str]] = {}
        self._swaps: list[tuple[Any, Any]] = []
        self._inside: ContextVar[bool] = ContextVar("fitscribe_post_training_inside", default=False)
        self._lock = threading.Lock()

    # -- bookkeeping -------------------------------------------------------------------------

    def remember_model(self, estimator: Any, run_id: str) -> None:
        """Mark ``estimator`` as trained in ``run_id``: metrics on its predictions go there."""
        try:
            self._models[estimator] = run_id
        except TypeError:  # unhashable or not weak-referenceable: no post-training metrics
            pass

    def _run_of(self, estimator: Any) -> str | None:
        try:
            return self._models.get(estimator)
        except TypeError:
            return None

    def _remember_output(self, result: Any, run_id: str, dataset: str) -> None:
        key = id(result)
        try:
            ref: Any = weakref.ref(result, lambda _r, k=key: self._outputs.pop(k, None))
        except TypeError:  # e.g. a list: keep a strong reference instead (bounded below)
            ref = lambda r=result: r  # noqa: E731
        with self._lock:
            if len(self._outputs) > 10_000:
                self._outputs.clear()
            self._outputs[key] = (ref, run_id, dataset)

    def _find_output(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str] | None:
        for value in (*args, *kwargs.values()):
            entry = self._outputs.get(id(value))
            if entry is not None and entry[0]() is value:
                return entry[1], entry[2]
        return None

    def clear(self) -> None:
        """Forget every model and prediction (on disable)."""
        self._models = weakref.WeakKeyDictionary()
        self._outputs.clear()
        self._counts.clear()
        self._info.clear()

    # -- patching ----------------------------------------------------------------------------

    def patch_metrics(self, module: Any) -> None:
        """Route every public metric function of ``sklearn.metrics`` through :meth:`_metric`."""
        for name in getattr(module, "__all__", ()):
            function = getattr(module, name, None)
            if not callable(function) or isinstance(function, type) or name in _EXCLUDED or name.startswith("plot_"):
                continue
            inner = getattr(function, "__wrapped__", None)
            cell = _cell_holding(function, inner)
            if cell is not None and not getattr(inner, _MARK, False):
                cell.cell_contents = self._metric(name, inner)
                self._swaps.append((cell, inner))
            elif cell is None:
                self.integration.patches.patch(module, name, lambda original, n=name: self._metric(n, original))

    def revert(self) -> None:
        """Put every swapped metric function back."""
        for cell, original in reversed(self._swaps):
            cell.cell_contents = original
        self._swaps.clear()
        self.clear()

    def _metric(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        post = self

        def metric(*args: Any, **kwargs: Any) -> Any:
            if post._inside.get():
                return original(*args, **kwargs)
            token = post._inside.set(True)
            try:
                result = original(*args, **kwargs)
            finally:
                post._inside.reset(token)
            try:
                post._log(name, result, args, kwargs)
            except Exception as exc:  # never break the user's evaluation code
                contain(post.integration, f"logging the post-training metric {name}", exc)
            return result

        setattr(metric, _MARK, True)
        metric.__wrapped__ = original  # type: ignore[attr-defined]
        return metric

    def predict_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``predict``-like methods: remember which run produced each result."""
        post = self

        def patched(estimator: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(estimator, *args, **kwargs)
            if post._models and current_call() is None and not post._inside.get():
                run_id = post._run_of(estimator)
                if run_id is not None:
                    data = args[0] if args else kwargs.get("X")
                    post._remember_output(result, run_id, _variable_name(data, _user_frame()))
            return result

        return patched

    def score_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``score``: log ``<Class>_score_<dataset>`` for autologged models."""
        post = self

        def patched(estimator: Any, *args: Any, **kwargs: Any) -> Any:
            run_id = post._run_of(estimator) if post._models and current_call() is None else None
            if run_id is None or post._inside.get():
                return original(estimator, *args, **kwargs)
            token = post._inside.set(True)
            try:
                result = original(estimator, *args, **kwargs)
            finally:
                post._inside.reset(token)
            try:
                data = args[0] if args else kwargs.get("X")
                dataset = _variable_name(data, _user_frame())
                post._emit(run_id, f"{type(estimator).__name__}_score", dataset, result,
                           f"{type(estimator).__name__}.score(X={dataset})")
            except Exception as exc:  # never break the user's evaluation code
                contain(post.integration, "logging a post-training score", exc)
            return result

        return patched

    # -- logging -----------------------------------------------------------------------------

    def _log(self, name: str, result: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not self._outputs or current_call() is not None:
            return
        found = self._find_output(args, kwargs)
        if found is None:
            return
        run_id, dataset = found
        self._emit(run_id, name, dataset, result, f"{name}({_describe(args, kwargs, _user_frame())})")

    def _emit(self, run_id: str, name: str, dataset: str, result: Any, call: str) -> None:
        if isinstance(result, bool) or not isinstance(result, (int, float)) and not _is_numpy_scalar(result):
            return
        with self._lock:
            count = self._counts.get((run_id, f"{name}_{dataset}"), 0) + 1
            self._counts[(run_id, f"{name}_{dataset}")] = count
            key = f"{name}_{dataset}" if count == 1 else f"{name}-{count}_{dataset}"
            info = self._info.setdefault(run_id, {})
            info[key] = call
            snapshot = dict(info)
        from fitscribe import fluent

        client = fluent.get_client()
        client.log_metric(run_id, key, float(result))
        client.log_dict(run_id, snapshot, "metric_info.json")


def _cell_holding(function: Any, inner: Any) -> Any:
    if inner is None:
        return None
    for cell in getattr(function, "__closure__", None) or ():
        try:
            if cell.cell_contents is inner:
                return cell
        except ValueError:  # an empty cell
            continue
    return None


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and getattr(value, "dtype", None) is not None and value.dtype.kind in "iuf"


def _user_frame() -> Any:
    """Return the nearest calling frame outside scikit-learn and fitscribe."""
    import os

    frame = sys._getframe(1)
    skip = (os.sep + "sklearn" + os.sep, os.sep + "fitscribe" + os.sep + "autolog" + os.sep)
    while frame is not None and any(part in frame.f_code.co_filename for part in skip):
        frame = frame.f_back
    return frame


def _variable_name(value: Any, frame: Any) -> str:
    """Return the name of the caller's variable holding ``value`` (``unknown_dataset`` if none)."""
    if value is None or frame is None:
        return "unknown_dataset"
    for name, candidate in frame.f_locals.items():
        if candidate is value and name != "self" and not name.startswith("_"):
            return name
    return "unknown_dataset"


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any], frame: Any) -> str:
    parts = [_variable_name(a, frame) if not isinstance(a, (int, float, str)) else repr(a) for a in args]
    parts += [f"{k}={_variable_name(v, frame) if not isinstance(v, (int, float, str)) else repr(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)
