"""One line records unchanged training code: ``fitscribe.autolog()``.

>>> import fitscribe
>>> fitscribe.autolog()                                    # doctest: +SKIP
>>> LogisticRegression().fit(X, y)                         # doctest: +SKIP  (a run is recorded)

``fitscribe.autolog(...)`` switches on every integration (scikit-learn, XGBoost, Lightning, and
third-party ones registered under the entry-point group ``fitscribe.autologgers``);
``fitscribe.autolog.sklearn.autolog(...)`` configures one, and its settings win over the
universal call. Nothing is imported here: a framework already imported is patched at once, any
other when your code imports it. ``autolog(disable=True)`` restores every patched attribute.

Safety: exceptions of your training code pass through unchanged (a run autolog opened ends
FAILED, or KILLED on Ctrl-C); exceptions of autolog's own code never reach your training: they
become one warning and the integration switches itself off (``FITSCRIBE_STRICT=1`` re-raises
them instead, for tests). Under distributed training only global rank zero logs.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any, Iterable

from fitscribe._plugins import Registry
from fitscribe.autolog._config import AutologConfig, Integration
from fitscribe.autolog._session import strict_mode
from fitscribe.errors import FitscribeWarning

__all__ = ["autolog", "AutologConfig", "Integration", "INTEGRATIONS", "AutologHandle", "sklearn", "xgboost", "lightning"]

INTEGRATIONS: Registry[Integration] = Registry(
    "autolog integration",
    "fitscribe.autologgers",
    {
        "sklearn": "fitscribe.autolog.sklearn:INTEGRATION",
        "xgboost": "fitscribe.autolog.xgboost:INTEGRATION",
        "lightning": "fitscribe.autolog.lightning:INTEGRATION",
    },
)
_SUBMODULES = ("sklearn", "xgboost", "lightning")


class AutologHandle:
    """What :func:`autolog` returns: the integrations it configured; ``disable()`` undoes it."""

    def __init__(self, integrations: list[Integration]) -> None:
        self.integrations = integrations

    def __repr__(self) -> str:
        return f"<AutologHandle {[i.name for i in self.integrations]}>"

    def disable(self) -> None:
        """Switch these integrations off and restore every attribute they patched."""
        for integration in self.integrations:
            integration.disable()


def _config(**kwargs: Any) -> AutologConfig:
    return AutologConfig(**kwargs)


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
    exclude_flavors: Iterable[str] | None = None,
    *,
    log_traces: bool = True,
    disable_for_unsupported_versions: bool = False,
) -> AutologHandle:
    """Record parameters, metrics, models and plots of every supported framework's training.

    Args:
        log_models: Log each trained model (with its signature and environment).
        log_input_examples: Save the first 5 rows of training input with the model.
        log_model_signatures: Store the model's input/output signature.
        log_datasets: Record training and evaluation datasets as run inputs.
        log_training_metrics: Compute metrics on the training data after fit.
        log_plots: Save plots (confusion matrix, ROC and PR curves, feature importance).
        disable: Switch autologging off and restore every patched attribute.
        exclusive: Never log into a run you started; only into runs autolog opens.
        silent: Emit no warnings from autolog itself.
        extra_tags: Tags for every run autolog opens.
        registered_model_name: Register each logged model as a new version of this name.
        exclude_flavors: Integration names to leave alone, e.g. ``["lightning"]``.
        log_traces: Accepted for MLflow's signature (fitscribe records no traces).
        disable_for_unsupported_versions: Accepted for MLflow's signature: outside the tested
            framework versions fitscribe warns once and still logs.

    Returns:
        A handle whose ``disable()`` switches these integrations off again.
    """
    config = _config(
        log_models=log_models, log_input_examples=log_input_examples, log_model_signatures=log_model_signatures,
        log_datasets=log_datasets, log_training_metrics=log_training_metrics, log_plots=log_plots,
        disable=disable, exclusive=exclusive, silent=silent, extra_tags=extra_tags,
        registered_model_name=registered_model_name,
    )
    excluded = {name.lower() for name in exclude_flavors or ()}
    touched = []
    for name in INTEGRATIONS.keys():
        if name in excluded:
            continue
        try:
            integration = INTEGRATIONS.get(name)
        except Exception as exc:  # a broken third-party integration must not stop the others
            if strict_mode():
                raise
            if not silent:
                warnings.warn(f"fitscribe autolog could not load the {name!r} integration: {exc}", FitscribeWarning, stacklevel=2)
            continue
        if disable:
            integration.disable()
            integration.explicit = False
        elif not integration.explicit:
            integration.enable(integration.configure(config, {}))
        touched.append(integration)
    return AutologHandle(touched)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"fitscribe.autolog.{name}")
    raise AttributeError(f"module 'fitscribe.autolog' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets ``fitscribe.autolog(...)`` call :func:`autolog` while ``fitscribe.autolog.sklearn`` stays a module."""

    def __call__(self, *args: Any, **kwargs: Any) -> AutologHandle:
        return autolog(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
