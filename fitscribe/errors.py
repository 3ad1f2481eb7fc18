"""The fitscribe exception hierarchy.

Every error fitscribe raises derives from :class:`FitscribeError`. Subclasses say what the caller
can do about it, and also derive from the matching built-in (``ValueError``, ``LookupError``,
``ImportError``) so generic ``except`` clauses keep working.

Messages name what failed, show the offending value, and give the fix.
"""

from __future__ import annotations

__all__ = [
    "FitscribeError",
    "ConfigError",
    "InvalidValueError",
    "NotFoundError",
    "RunNotFound",
    "ExperimentNotFound",
    "ModelNotFound",
    "ModelVersionNotFound",
    "AlreadyExistsError",
    "InvalidStateError",
    "BackendError",
    "MissingDependencyError",
    "SchemaVersionError",
    "ForeignStoreError",
    "ConstraintViolation",
    "RegistryNotSupportedError",
    "FitscribeWarning",
]


class FitscribeError(Exception):
    """Base class of every exception raised by fitscribe."""


class ConfigError(FitscribeError, ValueError):
    """A URI, environment variable or option is malformed or names something unknown."""


class InvalidValueError(FitscribeError, ValueError):
    """A name, key or value passed by the caller breaks a rule (length, characters, type)."""


class NotFoundError(FitscribeError, LookupError):
    """The requested object does not exist (or is not visible in the requested view)."""


class RunNotFound(NotFoundError):
    """No run has the given run id."""


class ExperimentNotFound(NotFoundError):
    """No experiment has the given id or name."""


class ModelNotFound(NotFoundError):
    """No registered model has the given name."""


class ModelVersionNotFound(NotFoundError):
    """A registered model has no version with the given number, or no version with the given alias."""


class AlreadyExistsError(FitscribeError):
    """An object with the same unique name or key already exists."""


class InvalidStateError(FitscribeError):
    """The operation is not allowed in the object's current state (e.g. logging to a deleted run)."""


class BackendError(FitscribeError):
    """A store could not be reached or failed; the driver's exception is chained as ``__cause__``."""


class MissingDependencyError(FitscribeError, ImportError):
    """An optional package is needed; ``extra`` names the fitscribe extra that installs it."""

    def __init__(self, message: str, *, extra: str | None = None, package: str | None = None) -> None:
        super().__init__(message)
        self.extra = extra
        self.package = package

    @classmethod
    def for_package(cls, package: str, extra: str, purpose: str) -> "MissingDependencyError":
        """Build the standard message for a missing optional package.

        Args:
            package: The importable package that is missing, e.g. ``"psycopg"``.
            extra: The fitscribe extra that installs it, e.g. ``"postgres"``.
            purpose: What it is needed for, e.g. ``"the PostgreSQL tracking store"``.

        Returns:
            The error, ready to raise.
        """
        return cls(
            f"{purpose} needs the package {package!r}, which is not installed. "
            f'Install it with: pip install "fitscribe[{extra}]"',
            extra=extra,
            package=package,
        )


class SchemaVersionError(FitscribeError):
    """The database schema is older or newer than this version of fitscribe expects."""


class ForeignStoreError(ConfigError):
    """The tracking URI names data fitscribe did not create (an MLflow database or ``mlruns``
    folder, another application's SQLite file); it was left unchanged."""


class ConstraintViolation(InvalidValueError):
    """The database refused a write that breaks one of its constraints (a unique name taken, a row
    referring to one that is gone), typically because another process wrote first."""


class RegistryNotSupportedError(FitscribeError):
    """The tracking store has no model registry (registered models need a database store)."""


class FitscribeWarning(UserWarning):
    """Category of every warning fitscribe emits, so users can filter them in one place."""
