"""Argument handling shared by the MLflow-named modules (``fitscribe.sklearn``, ``.pyfunc``...).

Those modules keep MLflow's signatures so ``import fitscribe as mlflow`` runs MLflow scripts; this
module turns MLflow's spellings into fitscribe's: ``artifact_path`` (deprecated) into ``name``,
``conda_env`` into pip requirements, and drops options that have no meaning here. It imports no
framework.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping

from fitscribe.errors import FitscribeWarning, InvalidValueError

__all__ = ["FitscribeDeprecationWarning", "model_name", "pip_options", "refuse", "MLFLOW_ONLY_LOG_OPTIONS"]

MLFLOW_ONLY_LOG_OPTIONS = ("await_registration_for", "params", "tags", "model_type", "step", "model_id")
"""``log_model`` keywords of MLflow 3 that fitscribe accepts and ignores (LoggedModel metadata;
registration is synchronous here)."""


class FitscribeDeprecationWarning(FitscribeWarning, FutureWarning):
    """A spelling that still works but will go (it names the replacement)."""


def model_name(name: str | None, artifact_path: str | None, stacklevel: int = 3) -> str:
    """Return the model's name inside the run from ``name`` or MLflow's deprecated ``artifact_path``.

    Raises:
        InvalidValueError: Both were given.
    """
    if artifact_path is not None and name is not None:
        raise InvalidValueError(
            f"Give the model's name once: name={name!r} or artifact_path={artifact_path!r} "
            "(artifact_path is the deprecated spelling of name), not both."
        )
    if artifact_path is not None:
        warnings.warn(
            "log_model(artifact_path=...) is deprecated, as in MLflow 3; write log_model(..., "
            f"name={artifact_path!r}). It will be removed in fitscribe 1.0.",
            FitscribeDeprecationWarning, stacklevel=stacklevel,
        )
        return artifact_path
    return name if name is not None else "model"


def pip_options(conda_env: Any, pip_requirements: Any, extra_pip_requirements: Any) -> dict[str, Any]:
    """Return ``pip_requirements`` / ``extra_pip_requirements`` keywords, reading the pip list of
    MLflow's ``conda_env`` (a dict or a YAML file) when one is given.

    Raises:
        InvalidValueError: More than one of the three was given (as in MLflow), or ``conda_env``
            is neither a dict nor a YAML file.
    """
    given = [n for n, v in (("conda_env", conda_env), ("pip_requirements", pip_requirements),
                            ("extra_pip_requirements", extra_pip_requirements)) if v is not None]
    if len(given) > 1:
        raise InvalidValueError(f"Give only one of conda_env, pip_requirements and extra_pip_requirements, not {given}.")
    if conda_env is not None:  # its pip list (MLflow itself left out); none: inferred as usual
        pip = _conda_pip(conda_env)
        return {"pip_requirements": pip} if pip else {}
    options: dict[str, Any] = {}
    if pip_requirements is not None:
        options["pip_requirements"] = _requirement_lines(pip_requirements)
    if extra_pip_requirements is not None:
        options["extra_pip_requirements"] = _requirement_lines(extra_pip_requirements)
    return options


def _requirement_lines(value: Any) -> list[str]:
    """MLflow accepts a list of requirement strings or the path of a requirements file."""
    if isinstance(value, (str, os.PathLike)):
        with open(value, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")]
    return [str(item) for item in value]


def _conda_pip(conda_env: Any) -> list[str]:
    env = conda_env
    if isinstance(conda_env, (str, os.PathLike)):
        import yaml

        with open(conda_env, encoding="utf-8") as fh:
            env = yaml.safe_load(fh)
    if not isinstance(env, Mapping):
        raise InvalidValueError(f"conda_env must be a dict or the path of a conda YAML file, not {type(conda_env).__name__}.")
    pip: list[str] = []
    for dep in env.get("dependencies") or ():
        if isinstance(dep, Mapping) and "pip" in dep:
            pip += [str(p) for p in dep["pip"]]
    pip = [p for p in pip if p.split("=")[0].split("<")[0].split(">")[0].strip().lower() not in ("mlflow", "mlflow-skinny")]
    return pip


def refuse(what: str, **given: Any) -> None:
    """Raise a clear error naming the MLflow options given that ``what`` does not support.

    Raises:
        InvalidValueError: One of ``given`` is not None.
    """
    names = [k for k, v in given.items() if v is not None]
    if names:
        raise InvalidValueError(f"{what} does not support {', '.join(names)} (an MLflow option); leave it out.")
