"""scikit-learn autologging: every estimator's ``fit`` records one run.

What a fit records (names as MLflow's, so dashboards port over): params from
``get_params(deep=True)``; tags ``estimator_name`` and ``estimator_class``; training metrics
(``training_accuracy_score``, ``training_f1_score``, ``training_roc_auc``,
``training_mean_squared_error``, ``training_r2_score``, ``training_score``...) from one
prediction pass; ``training_confusion_matrix.png`` and, for binary classifiers, ROC and PR curves;
``estimator.html``; the training dataset; the model (flavor ``sklearn``) with its signature; and
the ``fitscribe.autolog.report.json`` artifact.

Pipelines and meta-estimators log one run, for the outermost ``fit``. ``GridSearchCV`` and
``RandomizedSearchCV`` log a parent run (``best_<param>`` params, ``best_cv_score``,
``cv_results.csv``, ``model`` and ``best_estimator``) and child runs for the best
``max_tuning_runs`` candidates. Fits inside ``cross_val_score`` and the other
``sklearn.model_selection`` helpers log nothing, however those functions were imported.

Classes are patched module by module as scikit-learn imports them, so ``autolog()`` imports
nothing and costs nothing for the parts of scikit-learn a script never uses.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Callable

from typing import TYPE_CHECKING

from fitscribe.autolog._config import AutologConfig, Integration
from fitscribe.autolog._session import call_patched, current_call
from fitscribe.autolog._sklearn_search import in_cross_validation

if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.autolog._session import TrainingCall
    from fitscribe.autolog._sklearn_post import PostTraining

_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "transform")

__all__ = ["autolog", "INTEGRATION"]

_TRAINING_METHODS = ("fit", "fit_transform", "fit_predict")
# As MLflow: transformers that are almost always pipeline steps log nothing on their own.
_EXCLUDED_MODULES = ("sklearn.preprocessing", "sklearn.impute", "sklearn.feature_extraction", "sklearn.feature_selection")
_EXCLUDED_CLASSES = {"ColumnTransformer"}
_SEARCH_CLASSES = {"GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV"}


class SklearnIntegration(Integration):
    """Patches ``fit``/``fit_transform``/``fit_predict`` of scikit-learn's estimators."""

    name = "sklearn"
    import_name = "sklearn"
    tested_versions = ("1.2.0", "1.9.1")
    distribution = "scikit-learn"
    defaults = {
        "max_tuning_runs": 5,
        "serialization_format": "cloudpickle",
        "pos_label": None,
        "max_metric_rows": 100_000,
        "log_post_training_metrics": True,
    }

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[ModuleType] = []
        self._post: "PostTraining | None" = None

    @property
    def post(self) -> "PostTraining":
        """Post-training metrics bookkeeping (created on first use)."""
        if self._post is None:
            from fitscribe.autolog._sklearn_post import PostTraining

            self._post = PostTraining(self)
        return self._post

    def configure(self, config: AutologConfig, options: dict[str, Any]) -> AutologConfig:
        """Validate scikit-learn options (``max_tuning_runs`` >= 0 or None)."""
        merged = super().configure(config, options)
        runs = merged.options["max_tuning_runs"]
        if runs is not None and (not isinstance(runs, int) or runs < 0):
            from fitscribe.errors import InvalidValueError

            raise InvalidValueError(f"max_tuning_runs must be None or an integer >= 0, got {runs!r}.")
        return merged

    def patch(self, module: ModuleType) -> None:
        """Patch the estimator classes ``module`` defines (once ``sklearn.base`` is complete)."""
        if module.__name__.startswith(_EXCLUDED_MODULES) or ".tests" in module.__name__:
            return
        estimator = getattr(sys.modules.get("sklearn.base"), "BaseEstimator", None)
        if estimator is None:  # imported while sklearn.base itself is still being imported
            self._pending.append(module)
            return
        while self._pending:
            self._patch_classes(self._pending.pop(), estimator)
        self._patch_classes(module, estimator)
        if module.__name__ == "sklearn.metrics" and self.config.options.get("log_post_training_metrics"):
            self.post.patch_metrics(module)

    def disable(self) -> None:
        """Switch off, restore every patched method and forget modules waiting to be patched."""
        super().disable()
        if self._post is not None:
            self._post.revert()
        self._pending = []

    def _patch_classes(self, module: ModuleType, estimator: type) -> None:
        for value in list(vars(module).values()):
            if not (isinstance(value, type) and issubclass(value, estimator) and value.__module__ == module.__name__):
                continue
            if value.__name__.startswith("_") or value.__name__ in _EXCLUDED_CLASSES or getattr(value, "__abstractmethods__", None):
                continue
            for method in _TRAINING_METHODS:  # patched on the concrete class even when inherited
                if _has_method(value, method):
                    self.patches.patch(value, method, self._wrapper)
            if self.config.options.get("log_post_training_metrics"):
                for method in _PREDICT_METHODS:
                    if _has_method(value, method):
                        self.patches.patch(value, method, self.post.predict_wrapper)
                if _has_method(value, "score"):
                    self.patches.patch(value, "score", self.post.score_wrapper)

    def _wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        integration = self

        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not integration._wanted():
                return original(self, *args, **kwargs)
            fit = _Fit(self, args, kwargs, original)
            return call_patched(integration, original, self, (self, *args), kwargs, fit.before, fit.after)

        return patched

    def _wanted(self) -> bool:
        return current_call() is None and not in_cross_validation(skip=2)


class _Fit:
    """One autologged fit: the arguments it got, and what to log before and after."""

    def __init__(self, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], original: Callable[..., Any]) -> None:
        self.estimator = estimator
        bound = _bind(original, estimator, args, kwargs)
        self.X = bound.get("X", args[0] if args else None)
        self.y = bound.get("y", bound.get("Y"))
        self.weight = bound.get("sample_weight")
        self.example: Any = None

    @property
    def is_search(self) -> bool:
        search = sys.modules.get("sklearn.model_selection._search")
        base = getattr(search, "BaseSearchCV", None)
        return (base is not None and isinstance(self.estimator, base)) or type(self.estimator).__name__ in _SEARCH_CLASSES

    def before(self, call: "TrainingCall") -> None:
        from fitscribe.autolog import _logging as log

        config = call.config
        call.step("params", lambda: log.log_params(call, self.estimator.get_params(deep=not self.is_search)))
        call.step("tags", lambda: log.set_tags(call, {
            "estimator_name": type(self.estimator).__name__,
            "estimator_class": f"{type(self.estimator).__module__}.{type(self.estimator).__qualname__}",
        }))
        if config.log_models and (config.log_input_examples or config.log_model_signatures):
            self.example = log.head_rows(self.X)
        if config.log_datasets and self.X is not None:
            call.step("dataset", lambda: log.log_dataset(call, self.X, self.y, "train"))

    def after(self, call: "TrainingCall", result: Any) -> None:
        from fitscribe.autolog import _logging as log
        from fitscribe.autolog import _sklearn_metrics as metrics

        config = call.config
        fitted = self.estimator
        if config.options.get("log_post_training_metrics") and call.run_id is not None:
            call.integration.post.remember_model(fitted, call.run_id)  # type: ignore[attr-defined]
        if self.is_search:
            call.step("search results", lambda: _log_search(call, fitted))
        wants_plots = config.log_plots and _is_classifier(fitted)
        if (config.log_training_metrics or wants_plots) and self.y is not None and hasattr(fitted, "predict"):
            preds = call.step("predictions", lambda: metrics.predictions(call, fitted, self.X, self.y, self.weight))
            if preds is not None:
                call.defer("training metrics", lambda: _log_training_metrics(call, preds, config.log_training_metrics, wants_plots))
        elif config.log_training_metrics and self.y is None:
            call.skip("training metrics", "fit was called without y (unsupervised): nothing to score against")
        snapshot = call.step("estimator.html", lambda: _params_snapshot(fitted))
        if snapshot is not None:
            call.defer("estimator.html", lambda: _log_html(call, snapshot))
        if config.log_models:
            call.step("model", lambda: _log_model(call, fitted, "model", self.example))
            if self.is_search and hasattr(fitted, "best_estimator_"):
                call.step("best_estimator", lambda: _log_model(call, fitted.best_estimator_, "best_estimator", self.example))


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


def _log_training_metrics(call: "TrainingCall", preds: Any, log_metrics: bool, plots: bool) -> None:
    from fitscribe.autolog import _logging as log
    from fitscribe.autolog import _sklearn_metrics as metrics

    if log_metrics:
        values = call.step("compute training metrics", lambda: metrics.training_metrics(call, preds))
        if values:
            call.step("log training metrics", lambda: log.log_metrics(call, values))
    if plots:
        call.step("plots", lambda: metrics.log_plots(call, preds))


def _has_method(cls: type, name: str) -> bool:
    try:
        return callable(getattr(cls, name, None))
    except Exception:  # a descriptor that fails on the class: leave it alone
        return False


def _bind(original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    try:
        return dict(inspect.signature(original).bind_partial(estimator, *args, **kwargs).arguments)
    except (TypeError, ValueError):
        return dict(kwargs)


def _params_snapshot(estimator: Any) -> Any:
    """An unfitted copy with the same params, so the HTML rendered later shows them as they were."""
    from sklearn.base import clone

    return clone(estimator)


def _log_html(call: "TrainingCall", estimator: Any) -> None:
    from sklearn.utils import estimator_html_repr

    assert call.run_id is not None
    call.client.log_text(call.run_id, estimator_html_repr(estimator), "estimator.html")
    call.record("artifacts", "estimator.html")


def _log_model(call: "TrainingCall", estimator: Any, name: str, example: Any) -> None:
    from fitscribe.flavors import sklearn as flavor

    config = call.config
    signature: Any = None if config.log_model_signatures else False
    if signature is None and example is None:
        signature = False
    info = flavor.log_model(
        estimator, name, run_id=call.run_id,
        serialization_format=config.options.get("serialization_format", "cloudpickle"),
        input_example=example if config.log_input_examples else None,
        signature=_signature(estimator, example) if signature is None else signature,
        registered_model_name=config.registered_model_name,
    )
    call.record("models", info.model_uri)


def _signature(estimator: Any, example: Any) -> Any:
    from fitscribe.flavors.signature import infer_signature

    output = None
    for method in ("predict", "transform"):
        if hasattr(estimator, method):
            try:
                output = getattr(estimator, method)(example)
            except Exception:  # the signature is best effort; inputs alone still help
                output = None
            break
    return infer_signature(example, output)


def _log_search(call: "TrainingCall", search: Any) -> None:
    from fitscribe.autolog import _sklearn_search

    _sklearn_search.log_search(call, search)


INTEGRATION = SklearnIntegration()


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
    max_tuning_runs: int | None = 5,
    serialization_format: str = "cloudpickle",
    pos_label: Any = None,
    max_metric_rows: int = 100_000,
    log_post_training_metrics: bool = True,
) -> None:
    """Record scikit-learn training; these settings win over ``fitscribe.autolog()``'s.

    Args:
        log_models: Log the fitted estimator (``model``; also ``best_estimator`` for searches).
        log_input_examples: Save the first 5 training rows with the model.
        log_model_signatures: Store the model's signature, inferred from the first rows.
        log_datasets: Record the training dataset as a run input.
        log_training_metrics: Compute training metrics from one prediction pass.
        log_plots: Save the confusion matrix and ROC/PR curves (PNG, drawn with Pillow).
        disable: Switch off and restore every patched method.
        exclusive: Never log into a run you started.
        silent: Emit no warnings from autolog itself.
        extra_tags: Tags for every run autolog opens.
        registered_model_name: Register each logged model as a new version of this name.
        max_tuning_runs: Child runs for the best search candidates (None: all).
        serialization_format: ``"cloudpickle"`` or ``"pickle"``.
        pos_label: With it, binary precision/recall/F1 use ``average="binary"``.
        max_metric_rows: Sample the training set to this many rows for metrics and plots.
        log_post_training_metrics: Log ``sklearn.metrics`` results on predictions of autologged
            models to their runs (``accuracy_score_X_test``...), and ``model.score`` calls.
    """
    INTEGRATION.apply(locals())
