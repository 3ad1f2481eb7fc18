"""Autolog options and the base class of integrations (one per framework).

An integration is registered by name (entry-point group ``fitscribe.autologgers``) and knows its
framework's top-level module (``import_name``), its tested version range, how to ``patch`` the
framework once it is imported, and how to undo it all.
"""

from __future__ import annotations

import threading
import warnings
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Callable

from fitscribe.autolog._patch import PatchSet
from fitscribe.errors import FitscribeWarning, InvalidValueError

__all__ = ["AutologConfig", "Integration"]


class AutologConfig:
    """Options shared by every integration; ``options`` holds the framework-specific ones.

    Attributes:
        log_models: Log the trained model with its flavor.
        log_input_examples: Save the first rows of the training input with the model.
        log_model_signatures: Infer and store the model's signature.
        log_datasets: Record the training (and evaluation) datasets as run inputs.
        log_training_metrics: Compute metrics on the training data after fit.
        log_plots: Save plots (confusion matrix, ROC/PR curves, feature importance).
        disable: Turn the integration off and restore every patched attribute.
        exclusive: Never log into a run the user started; only into runs autolog opens.
        silent: No warnings from autolog itself.
        extra_tags: Tags added to every run autolog opens.
        registered_model_name: Register each logged model as a new version of this name.
        options: Framework-specific options (e.g. ``max_tuning_runs`` for scikit-learn).
    """

    __slots__ = (
        "log_models", "log_input_examples", "log_model_signatures", "log_datasets", "log_training_metrics",
        "log_plots", "disable", "exclusive", "silent", "extra_tags", "registered_model_name", "options",
    )

    def __init__(
        self,
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
        options: dict[str, Any] | None = None,
    ) -> None:
        self.log_models = log_models
        self.log_input_examples = log_input_examples
        self.log_model_signatures = log_model_signatures
        self.log_datasets = log_datasets
        self.log_training_metrics = log_training_metrics
        self.log_plots = log_plots
        self.disable = disable
        self.exclusive = exclusive
        self.silent = silent
        self.extra_tags = dict(extra_tags) if extra_tags else None
        self.registered_model_name = registered_model_name
        self.options = dict(options or {})

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"AutologConfig({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AutologConfig) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def with_options(self, **options: Any) -> "AutologConfig":
        """Return a copy with framework-specific options merged in."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values["options"] = {**self.options, **options}
        return AutologConfig(**values)


class Integration:
    """Base class of framework integrations; subclasses set the class attributes and ``patch``.

    Attributes:
        name: Registry name, also the value of the ``mlflow.autologging`` tag.
        import_name: The framework's top-level module, watched by the import hook.
        tested_versions: ``(minimum, maximum)`` versions tested; outside, a warning (once).
        distribution: The framework's distribution name, for its version.
        defaults: Framework-specific options and their defaults.
    """

    name = "base"
    import_name = ""
    extra_import_names: tuple[str, ...] = ()
    tested_versions: tuple[str, str] = ("0", "999")
    distribution = ""
    defaults: dict[str, Any] = {}

    def __init__(self) -> None:
        self.patches = PatchSet()
        self.config = AutologConfig()
        self.enabled = False
        self.failed = False
        self.explicit = False  # configured by the framework's own autolog(): the universal call leaves it alone
        self._undo_hooks: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self._suppressed: ContextVar[int] = ContextVar(f"fitscribe_autolog_off_{self.name}", default=0)
        self._version_checked = False

    def __repr__(self) -> str:
        return f"<autolog integration {self.name!r} enabled={self.enabled}>"

    # -- configuration ------------------------------------------------------------------------

    def configure(self, config: AutologConfig, options: dict[str, Any]) -> AutologConfig:
        """Validate framework options against :attr:`defaults` and return the merged config."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise InvalidValueError(
                f"Unknown option(s) {unknown} for {self.name} autolog; known: {sorted(self.defaults)}."
            )
        return config.with_options(**{**self.defaults, **options})

    def enable(self, config: AutologConfig) -> None:
        """Switch on with ``config``: patch now if the framework is imported, else on import."""
        from fitscribe.autolog._imports import HOOKS

        with self._lock:
            self.disable()
            self.config = config
            if config.disable:
                return
            self.enabled = True
            self.failed = False
            for package in (self.import_name, *self.extra_import_names):
                self._undo_hooks.append(HOOKS.on_import(package, self._on_import))

    def apply(self, arguments: dict[str, Any]) -> None:
        """Configure from a framework ``autolog(...)`` call's arguments (its ``locals()``).

        The common options become the :class:`AutologConfig`, the framework's own (the keys of
        :attr:`defaults`) its ``options``; the result wins over ``fitscribe.autolog()``'s settings.
        """
        common = {name: arguments[name] for name in AutologConfig.__slots__ if name in arguments and name != "options"}
        options = {name: value for name, value in arguments.items() if name in self.defaults}
        if common.get("disable"):
            self.disable()
            self.explicit = False
            return
        self.enable(self.configure(AutologConfig(**common), options))
        self.explicit = True

    def disable(self) -> None:
        """Remove the import hooks and revert every patch; harmless when already off."""
        with self._lock:
            for undo in self._undo_hooks:
                undo()
            self._undo_hooks.clear()
            self.patches.revert_all()
            self.enabled = False

    def _on_import(self, module: ModuleType) -> None:
        if not self.enabled:
            return
        try:
            if not self._version_checked and module.__name__ == self.import_name:
                self._version_checked = True
                self._check_version()
            self.patch(module)
        except Exception as exc:  # a failure to patch must never break the user's import
            from fitscribe.autolog._session import contain

            contain(self, f"patching {module.__name__}", exc)

    def _check_version(self) -> None:
        from fitscribe.flavors.environment import INSPECTOR

        version = INSPECTOR.version(self.distribution) if self.distribution else None
        if version is None or self.config.silent:
            return
        low, high = self.tested_versions
        if _version_tuple(version) < _version_tuple(low) or _version_tuple(version) > _version_tuple(high):
            warnings.warn(
                f"fitscribe autolog for {self.name} is tested with {self.distribution} {low} to {high}; "
                f"{version} is installed. It stays on; please report problems.",
                FitscribeWarning,
                stacklevel=2,
            )

    def patch(self, module: ModuleType) -> None:
        """Patch what ``module`` (the framework or one of its submodules, just imported) defines."""
        raise NotImplementedError

    # -- temporary suppression ----------------------------------------------------------------

    def disabled_here(self) -> bool:
        """Return True inside :meth:`suppressed` in the current context."""
        return self._suppressed.get() > 0

    def suppressed(self) -> "_Suppressed":
        """Return a context manager inside which this integration logs nothing (e.g. inside cross_val_score)."""
        return _Suppressed(self._suppressed)


class _Suppressed:
    def __init__(self, var: ContextVar[int]) -> None:
        self._var = var
        self._token: Any = None

    def __enter__(self) -> None:
        self._token = self._var.set(self._var.get() + 1)

    def __exit__(self, *exc: Any) -> None:
        self._var.reset(self._token)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)

