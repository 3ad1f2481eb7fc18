"""XGBoost autologging: ``xgboost.train`` and the scikit-learn wrappers' ``fit`` record one run.

What a training records (names as MLflow's, so dashboards port over):

- params: for ``xgboost.train``, the ``params`` dict plus ``num_boost_round`` and, when you pass
  them, ``early_stopping_rounds``, ``maximize``, ``verbose_eval``, ``custom_metric`` and ``obj``
  (function names); for ``XGBClassifier``/``XGBRegressor``/``XGBRanker``/``XGBRF*``, the
  hyperparameters you set (``get_params()`` without the ``None`` defaults MLflow logs as the
  string ``'None'``) plus the effective ``n_estimators``; tags ``estimator_name``/``estimator_class``;
- per-iteration metrics ``<eval name>-<metric>`` (``train-rmse``, ``validation_0-logloss``;
  ``@`` becomes ``_at_``) with step = iteration, from an ``xgboost.callback.TrainingCallback``;
- with early stopping: ``stopped_iteration``, ``best_iteration``, and the best iteration's values
  as ``best-<eval name>-<metric>`` (step = best iteration). Unlike MLflow, they are *not* logged
  again under the original keys, so the latest ``validation_0-logloss`` is the final iteration's;
- ``feature_importance_<type>.json`` and ``.png`` (the 40 largest as bars, drawn with Pillow:
  matplotlib is not imported) for each of ``importance_types`` (``weight`` and ``gain`` by default);
- the model (flavor ``xgboost``, ``model.ubj``) with its signature, the training dataset
  (context ``train``) and each evaluation set (context ``eval``, the training data listed among
  them is not logged twice), and the ``fitscribe.autolog.report.json`` artifact.

A wrapper's ``fit`` is the outermost call: its inner ``xgboost.train`` logs its iterations into
the same run. Metrics are buffered and written once the training time since the last write is at
least 0.2 s and 50 times what that write took, so writing them costs at most 2% of training even on
a slow tracking server, and they appear live (within 0.2 s) on a fast one. Fits inside ``cross_val_score`` and the
other ``sklearn.model_selection`` helpers (and GridSearchCV's candidates) log nothing, and an
XGBoost model inside a scikit-learn ``Pipeline`` autologged by the sklearn integration logs into
nothing of its own: the pipeline's run is the one run.
"""

from __future__ import annotations

import json
import re
import time
from types import FunctionType, ModuleType
from typing import Any, Callable, Mapping

from fitscribe._time import now_ms
from fitscribe.autolog._config import AutologConfig, Integration
from fitscribe.autolog._patch import is_patched, original_of, patch_of
from fitscribe.autolog._sklearn_search import in_cross_validation
from fitscribe.autolog._session import SkippedItem, TrainingCall, call_patched, current_call, strict_mode
from fitscribe.autolog._xgboost_artifacts import log_importance, log_model, xgboost_message

__all__ = ["autolog", "INTEGRATION", "IMPORTANCE_TYPES"]


class _LazyLogging:
    """``fitscribe.autolog._logging``, imported on first use: ``autolog()`` stays cheap."""

    def __getattr__(self, name: str) -> Any:
        from fitscribe.autolog import _logging

        return getattr(_logging, name)


log = _LazyLogging()

IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
_TRAIN_OWNERS = ("xgboost", "xgboost.training", "xgboost.sklearn")
_AWAIT_TRAIN = "xgboost.await_train"  # set by a wrapper's fit: its inner train adds our callback
_LOGGER = "xgboost.logger"
_BAD_KEY_CHARS = re.compile(r"[^\w/.\- :]")
_WRITE_EVERY = 50  # write buffered metrics once training time since the last write is 50x its cost
_WRITE_INTERVAL = 0.2  # ... and at least this many seconds: one store call per 0.2 s, not per iteration


def _is_train(function: Any) -> bool:
    raw = original_of(function)
    return getattr(raw, "__module__", None) == "xgboost.training" and getattr(raw, "__name__", None) == "train"


class XGBoostIntegration(Integration):
    """Patches ``train`` where XGBoost binds it and ``fit`` of the scikit-learn wrappers."""

    name = "xgboost"
    import_name = "xgboost"
    tested_versions = ("1.7.0", "3.2.0")
    distribution = "xgboost"
    defaults: dict[str, Any] = {"importance_types": ("weight", "gain"), "model_format": "ubj"}

    def __init__(self) -> None:
        super().__init__()
        self._callback_cls: type | None = None

    def configure(self, config: AutologConfig, options: dict[str, Any]) -> AutologConfig:
        """Validate ``importance_types`` (a subset of :data:`IMPORTANCE_TYPES`) and ``model_format``."""
        from fitscribe.errors import InvalidValueError

        merged = super().configure(config, options)
        types = merged.options["importance_types"]
        types = (types,) if isinstance(types, str) else tuple(types or ())
        unknown = [t for t in types if t not in IMPORTANCE_TYPES]
        if unknown:
            raise InvalidValueError(f"Unknown importance_types {unknown}; use any of {list(IMPORTANCE_TYPES)}.")
        if merged.options["model_format"] not in ("ubj", "json"):
            raise InvalidValueError(f"model_format must be 'ubj' or 'json', got {merged.options['model_format']!r}.")
        return merged.with_options(importance_types=types)

    def patch(self, module: ModuleType) -> None:
        """Patch ``train`` in ``xgboost``, ``xgboost.training`` and ``xgboost.sklearn``, and the
        wrappers' ``fit`` when ``xgboost.sklearn`` is imported."""
        for attr, value in list(vars(module).items()):
            # A module imported while ``train`` was patched bound our wrapper: give it the original
            # (patched again below in its own right where wanted, so disabling restores it too).
            if isinstance(value, FunctionType) and is_patched(value) and _is_train(value) and patch_of(value).owner is not module:
                setattr(module, attr, original_of(value))
        if module.__name__ in _TRAIN_OWNERS and _is_train(vars(module).get("train")):
            self.patches.patch(module, "train", self._train_wrapper)
        if module.__name__ == "xgboost.sklearn":
            self._patch_wrappers(module)

    def _patch_wrappers(self, module: ModuleType) -> None:
        base = getattr(module, "XGBModel", None)
        for value in list(vars(module).values()):
            if isinstance(value, type) and base is not None and issubclass(value, base) and value.__module__ == module.__name__:
                self.patches.patch(value, "fit", self._fit_wrapper)  # inherited fit: patched once, on the base

    # -- wrappers -----------------------------------------------------------------------------

    def _train_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        integration = self

        def train(*args: Any, **kwargs: Any) -> Any:
            call = current_call()
            if call is not None:
                if call.integration is integration and call.state.pop(_AWAIT_TRAIN, False):
                    return _inner_train(call, original, args, kwargs)
                return original(*args, **kwargs)
            if not integration.enabled or integration.failed or in_cross_validation():
                return original(*args, **kwargs)
            run = _Train(original, args, kwargs)
            return call_patched(integration, run.train, run.dtrain, args, kwargs, run.before, run.after)

        return train

    def _fit_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        integration = self

        def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not integration.enabled or integration.failed or current_call() is not None:
                return original(self, *args, **kwargs)
            if in_cross_validation():
                with integration.suppressed():  # its inner train logs nothing either
                    return original(self, *args, **kwargs)
            run = _Fit(self, original, args, kwargs)
            return call_patched(integration, original, self, (self, *args), kwargs, run.before, run.after)

        return fit

    def callback_class(self) -> type:
        """Return our ``TrainingCallback`` subclass (made on first use: xgboost is imported by then)."""
        if self._callback_cls is None:
            import xgboost

            class FitscribeCallback(xgboost.callback.TrainingCallback):  # type: ignore[misc]
                """Hands each iteration's evaluation results to fitscribe; never stops training."""

                def __init__(self, logger: "_IterationLogger") -> None:
                    super().__init__()
                    self.logger = logger

                def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                    self.logger.iteration(epoch, evals_log)
                    return False

                def after_training(self, model: Any) -> Any:
                    self.logger.finish()
                    return model

            self._callback_cls = FitscribeCallback
        return self._callback_cls


# -- per-iteration metrics ------------------------------------------------------------------------

class _IterationLogger:
    """Buffers ``<eval>-<metric>`` points and writes them when training time since the last write
    is at least 0.2 s and 50 times that write's cost (at most 2% of training). Its own errors never
    reach training: they are recorded in the report (or re-raised in strict mode) and logging stops."""

    def __init__(self, call: TrainingCall, keep_history: bool) -> None:
        self.call = call
        self.keep_history = keep_history
        self.history: dict[int, dict[str, float]] = {}
        self.last_step: int | None = None
        self.failed = False
        self._buffer: list[Any] = []
        self._keys: dict[tuple[str, str], str] = {}
        self._since = time.perf_counter()
        self._cost = 0.0
        self._spent = 0.0

    def iteration(self, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> None:
        if self.failed:
            return
        try:
            self._collect(epoch, evals_log)
            if time.perf_counter() - self._since >= max(_WRITE_INTERVAL, _WRITE_EVERY * self._cost):
                self._write()
        except Exception as exc:  # our failure: contained below, training goes on
            self._fail(exc)

    def _collect(self, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> None:
        from fitscribe.entities import Metric

        now = now_ms()
        values: dict[str, float] = {}
        for data, metrics in evals_log.items():
            for metric, series in metrics.items():
                key = self._keys.get((data, metric))
                if key is None:
                    key = self._keys[(data, metric)] = _metric_key(data, metric)
                    self.call.record("metrics", key)
                latest = series[-1]
                values[key] = float(latest[0] if isinstance(latest, tuple) else latest)
        self._buffer.extend(Metric(key, value, now, epoch) for key, value in values.items())
        if self.keep_history:
            self.history[epoch] = values
        self.last_step = epoch

    def _write(self) -> None:
        start = time.perf_counter()
        points, self._buffer = self._buffer, []
        if points:
            log._batched(self.call, "metric", points, "metrics")
        self._since = time.perf_counter()
        self._cost = self._since - start
        self._spent += self._cost

    def finish(self, quiet: bool = False) -> None:
        """Write what is buffered: after training, or ``quiet`` (never raising) when it raised."""
        if self.failed or (quiet and not self._buffer):
            return
        try:
            self._write()
            self.call.timings_ms["per-iteration metrics"] = round(self._spent * 1000, 3)
        except Exception as exc:  # contained; if training raised, that is what the user must see
            if quiet:
                self.call.skip("per-iteration metrics", f"{type(exc).__name__}: {exc}")
            else:
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if strict_mode():
            raise exc
        self.failed = True
        self._buffer = []
        self.call.skip("per-iteration metrics", f"stopped after an error: {type(exc).__name__}: {exc}")


def _metric_key(data: str, metric: str) -> str:
    return _BAD_KEY_CHARS.sub("_", f"{data}-{metric}".replace("@", "_at_"))


def _bind(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        import inspect

        return dict(inspect.signature(original).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):  # the original will raise the user's TypeError itself
        return dict(kwargs)


def _attach(call: TrainingCall, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _IterationLogger:
    """Add our callback to ``train``'s ``callbacks`` (a new list: the caller's is never changed)."""
    import xgboost

    bound = _bind(original, args, kwargs)
    callbacks = list(bound.get("callbacks") or ())
    early = bool(bound.get("early_stopping_rounds")) or any(isinstance(cb, xgboost.callback.EarlyStopping) for cb in callbacks)
    logger = _IterationLogger(call, keep_history=early)
    call.state[_LOGGER] = logger
    call.state["xgboost.early_stopping"] = early
    kwargs["callbacks"] = [INTEGRATION.callback_class()(logger), *callbacks]  # first: sees each iteration
    return logger


def _inner_train(call: TrainingCall, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``train`` called by a wrapper's autologged ``fit``: log its iterations into the fit's run."""
    kwargs = dict(kwargs)
    logger = call.step("per-iteration metrics callback", lambda: _attach(call, original, args, kwargs))
    try:
        return original(*args, **kwargs)
    finally:
        if logger is not None:
            logger.finish(quiet=True)


# -- one xgboost.train call -----------------------------------------------------------------------

class _Train:
    """An autologged ``xgboost.train``: params and datasets before, model and importances after."""

    def __init__(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.original = original
        self.args = args
        self.kwargs = kwargs  # the dict call_patched unpacks into the original: _attach adds to it
        self.bound = _bind(original, args, kwargs)
        self.dtrain = self.bound.get("dtrain")
        self.example: Any = None
        self.logger: _IterationLogger | None = None

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """Run the original ``train`` (``kwargs`` carry our callback once :meth:`before` ran)."""
        try:
            return self.original(*args, **kwargs)
        finally:
            if self.logger is not None:
                self.logger.finish(quiet=True)

    def before(self, call: TrainingCall) -> None:
        call.step("params", lambda: log.log_params(call, _train_params(self.original, self.bound)))
        config = call.config
        if config.log_models and (config.log_input_examples or config.log_model_signatures):
            self.example = call.step("input example", lambda: _dmatrix_head(self.dtrain, 5))
        if config.log_datasets:
            call.step("dataset", lambda: _log_dmatrix(call, self.dtrain, "dataset", "train"))
            for data, name in self.bound.get("evals") or ():
                if data is not self.dtrain:  # MLflow logs the training data a second time here
                    call.step(f"dataset {name}", lambda d=data, n=name: _log_dmatrix(call, d, str(n), "eval"))
        # Last, so that a failure above never leaves our callback in the arguments.
        self.logger = call.step("per-iteration metrics callback", lambda: _attach(call, self.original, self.args, self.kwargs))

    def after(self, call: TrainingCall, booster: Any) -> None:
        _after_training(call, booster, booster, self.example)


def _train_params(original: Callable[..., Any], bound: dict[str, Any]) -> dict[str, Any]:
    params = bound.get("params") or {}
    out: dict[str, Any] = dict(params.items() if isinstance(params, Mapping) else params)
    import inspect

    default = inspect.signature(original).parameters["num_boost_round"].default
    out["num_boost_round"] = bound.get("num_boost_round", default)
    for name in ("early_stopping_rounds", "maximize", "verbose_eval"):
        if bound.get(name) is not None:
            out[name] = bound[name]
    for name in ("custom_metric", "obj", "feval"):
        if bound.get(name) is not None:
            out[name] = _callable_name(bound[name])
    return out


def _callable_name(value: Any) -> str:
    return str(getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or type(value).__name__)


def _dmatrix_rows(dm: Any, rows: int) -> Any:
    """The first ``rows`` rows of a DMatrix as a scipy CSR matrix (XGBoost keeps the values)."""
    import numpy as np
    import xgboost

    if not isinstance(dm, xgboost.DMatrix):
        raise SkippedItem(f"the data is a {type(dm).__name__}, not a DMatrix")
    try:
        return dm.slice(np.arange(min(rows, dm.num_row()))).get_data()
    except xgboost.core.XGBoostError as exc:  # QuantileDMatrix, external memory: no raw rows kept
        raise SkippedItem(f"{type(dm).__name__} keeps no raw rows to read back ({xgboost_message(exc)})") from exc


def _dmatrix_head(dm: Any, rows: int, sample: Any = None) -> Any:
    """The first rows as a DataFrame (named features) or an array; missing values are NaN, as
    XGBoost sees them; float64, so that a signature from it accepts float32 and float64 input."""
    import numpy as np

    sparse = (_dmatrix_rows(dm, rows) if sample is None else sample[:rows]).tocoo()
    dense = np.full(sparse.shape, np.nan)
    dense[sparse.row, sparse.col] = sparse.data
    if dm.feature_names is None:
        return dense
    try:
        import pandas as pd
    except ImportError:  # an array keeps the values; the names are in the Booster
        return dense
    return pd.DataFrame(dense, columns=list(dm.feature_names))


def _log_dmatrix(call: TrainingCall, dm: Any, name: str, context: str) -> None:
    """Record a DMatrix as a dataset input; the digest covers its shape, feature names and types,
    all labels and the first 1,000 rows (reading rows back from XGBoost is slow)."""
    import hashlib

    from fitscribe.entities import Dataset
    from fitscribe.flavors.signature import infer_signature

    assert call.run_id is not None
    sample = _dmatrix_rows(dm, 1_000)
    rows, cols = dm.num_row(), dm.num_col()
    digest = hashlib.sha256(f"{rows}x{cols}{dm.feature_names}{dm.feature_types}".encode())
    for array in (dm.get_label(), sample.data, sample.indices, sample.indptr):
        digest.update(array.tobytes())
    schema = infer_signature(_dmatrix_head(dm, 1, sample)).to_dict()["inputs"]
    dataset = Dataset(name=name, digest=digest.hexdigest()[:8], source_type="code", source="", schema=schema,
                      profile=json.dumps({"num_rows": int(rows), "num_features": int(cols)}))
    call.client.log_input(call.run_id, dataset, context=context)
    call.record("datasets", f"{name} ({context})")


# -- one scikit-learn wrapper fit -----------------------------------------------------------------

class _Fit:
    """An autologged ``XGBModel.fit``: its inner ``train`` logs the iterations into this run."""

    def __init__(self, estimator: Any, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.estimator = estimator
        bound = _bind(original, (estimator, *args), kwargs)
        self.X = bound.get("X", args[0] if args else None)
        self.y = bound.get("y", args[1] if len(args) > 1 else None)
        self.eval_set = bound.get("eval_set") or ()
        self.example: Any = None

    def before(self, call: TrainingCall) -> None:
        estimator = self.estimator
        call.step("params", lambda: log.log_params(call, _wrapper_params(estimator)))
        call.step("tags", lambda: log.set_tags(call, {
            "estimator_name": type(estimator).__name__,
            "estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        }))
        config = call.config
        if config.log_models and (config.log_input_examples or config.log_model_signatures):
            self.example = log.head_rows(self.X)
        if config.log_datasets and self.X is not None:
            call.step("dataset", lambda: log.log_dataset(call, self.X, self.y, "train"))
            for i, pair in enumerate(self.eval_set):
                name = f"validation_{i}"
                if pair[0] is self.X:
                    call.notes.append(f"{name} is the training data, recorded once as 'dataset' (train)")
                    continue
                call.step(f"dataset {name}", lambda p=pair, n=name: log.log_dataset(call, p[0], p[1], "eval", name=n))
        call.state[_AWAIT_TRAIN] = True  # last: the inner train adds our callback

    def after(self, call: TrainingCall, result: Any) -> None:
        booster = call.step("booster", self.estimator.get_booster)
        if booster is not None:
            _after_training(call, booster, self.estimator, self.example)


def _wrapper_params(estimator: Any) -> dict[str, Any]:
    """The hyperparameters set (no ``None`` defaults), callables by name, the effective rounds."""
    out: dict[str, Any] = {}
    for key, value in estimator.get_params(deep=False).items():
        if value is None:
            continue
        if key == "callbacks":
            value = [type(cb).__name__ for cb in value]
        elif callable(value):
            value = _callable_name(value)
        elif isinstance(value, (list, tuple)):
            value = [_callable_name(v) if callable(v) else v for v in value]
        out[key] = value
    rounds = getattr(estimator, "get_num_boosting_rounds", None)
    if callable(rounds):
        out["n_estimators"] = rounds()
    return out


# -- after training: early stopping, importances, model ---------------------------------------------

def _after_training(call: TrainingCall, booster: Any, model: Any, example: Any) -> None:
    logger = call.state.get(_LOGGER)
    if call.state.get("xgboost.early_stopping") and logger is not None and not logger.failed:
        call.step("early stopping metrics", lambda: _log_early_stopping(call, booster, logger))
    if call.config.options.get("importance_types"):
        call.step("feature importance scores", lambda: log_importance(call, booster))
    if call.config.log_models:
        call.step("model", lambda: log_model(call, model, example))


def _log_early_stopping(call: TrainingCall, booster: Any, logger: _IterationLogger) -> None:
    """``stopped_iteration``, ``best_iteration``, and ``best-<key>`` at step = best iteration."""
    if logger.last_step is None:
        raise SkippedItem("no iteration was evaluated")
    best = booster.attr("best_iteration")
    metrics: dict[str, Any] = {"stopped_iteration": logger.last_step}
    if best is None:
        log.log_metrics(call, metrics)
        raise SkippedItem("the booster has no best_iteration (no evaluation set improved)")
    metrics["best_iteration"] = int(best)
    log.log_metrics(call, metrics)
    values = logger.history.get(int(best), {})
    log.log_metrics(call, {f"best-{key}": value for key, value in values.items()}, step=int(best))


INTEGRATION = XGBoostIntegration()


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_datasets: bool = True,
    log_training_metrics: bool = True,
    log_plots: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    extra_tags: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    importance_types: list[str] | tuple[str, ...] = ("weight", "gain"),
    model_format: str = "ubj",
) -> None:
    """Record XGBoost training; these settings win over ``fitscribe.autolog()``'s.

    Args:
        log_models: Log the trained Booster or wrapper (``model``, in XGBoost's own format).
        log_input_examples: Save the first 5 training rows with the model.
        log_model_signatures: Store the model's signature, inferred from the first rows.
        log_datasets: Record the training data (context ``train``) and evaluation sets (``eval``).
        log_training_metrics: Accepted for a uniform call; the per-iteration evaluation metrics
            XGBoost computes are always logged.
        log_plots: Save ``feature_importance_<type>.png`` (horizontal bars drawn with Pillow, the
            40 largest; matplotlib is not imported).
        disable: Switch off and restore every patched function.
        exclusive: Never log into a run you started.
        silent: Emit no warnings from autolog itself.
        extra_tags: Tags for every run autolog opens.
        registered_model_name: Register each logged model as a new version of this name.
        importance_types: ``Booster.get_score`` types saved as ``feature_importance_<type>.json``
            (any of ``weight``, ``gain``, ``cover``, ``total_gain``, ``total_cover``; empty: none).
        model_format: ``"ubj"`` (UBJSON, compact) or ``"json"``.

    Raises:
        InvalidValueError: An unknown importance type or model format.
    """
    INTEGRATION.apply(locals())
