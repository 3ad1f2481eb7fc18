"""Validation of names, keys and values, shared by every store so all backends agree.

Limits follow MLflow's (so data moves both ways): keys up to 250 characters of letters, digits,
``_ - . / :`` and spaces; param values up to 6,000 characters; tag values up to 8,000; experiment
names up to 500; run names up to 250; registered model names up to 256 (no ``/``); model aliases up
to 255 letters, digits, ``_`` and ``-``; model descriptions up to 5,000. The explicit API raises on a
breach; autolog truncates.
"""

from __future__ import annotations

import math
import numbers
import posixpath
import re
from typing import Any

from fitscribe.errors import ExperimentNotFound, InvalidValueError

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "MAX_EXPERIMENT_TAG_VALUE_LENGTH",
    "MAX_EXPERIMENT_NAME_LENGTH",
    "MAX_RUN_NAME_LENGTH",
    "check_key",
    "check_param_value",
    "check_tag_value",
    "check_experiment_name",
    "check_run_name",
    "check_run_id",
    "check_experiment_id",
    "check_metric_value",
    "check_int",
    "MAX_MODEL_NAME_LENGTH",
    "MAX_ALIAS_LENGTH",
    "MAX_DESCRIPTION_LENGTH",
    "check_model_name",
    "check_model_version",
    "check_alias",
    "check_description",
    "check_source",
    "check_text",
]

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250
MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 5000
MAX_INT64 = 2**63 - 1
"""The largest step or timestamp a store keeps (a signed 64-bit integer)."""

_KEY_RE = re.compile(r"^[\w/.\- :]+$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")
_ALIAS_RE = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")


def check_key(key: Any, what: str = "key") -> str:
    """Validate a metric, param or tag key and return it.

    Raises:
        InvalidValueError: The key is empty, too long, has forbidden characters or is not a
            normalised relative path (``a//b``, ``./a``, ``../a``, ``/a``).
    """
    if not isinstance(key, str) or not key:
        raise InvalidValueError(f"The {what} {key!r} is invalid: give a non-empty string.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidValueError(
            f"The {what} {key[:40]!r}... is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}."
        )
    if not _KEY_RE.match(key):
        raise InvalidValueError(
            f"The {what} {key!r} has characters that are not allowed; use letters, digits, spaces "
            "and _ - . / : only."
        )
    if posixpath.normpath(key) != key or key.startswith("/") or key.startswith(".."):
        raise InvalidValueError(
            f"The {what} {key!r} is not a normalised path (no '..', leading '/', './' or '//'); "
            f"e.g. use {posixpath.normpath(key).lstrip('/')!r}."
        )
    return key


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_unicode(text: str, what: str, *, nul: bool = False) -> str:
    """Refuse lone UTF-16 surrogates (no database or JSON encoder keeps them) and, with ``nul``, NUL bytes."""
    if _LONE_SURROGATE.search(text):
        raise InvalidValueError(f"The {what} {text[:40]!r} holds a lone UTF-16 surrogate; give valid Unicode text.")
    if nul and "\x00" in text:
        raise InvalidValueError(f"The {what} {text[:40]!r} holds a NUL character; names may not contain it.")
    return text


def check_text(text: Any, what: str, *, nul: bool = False) -> str:
    """Return ``text`` if it is a string of valid Unicode (no lone surrogates; no NUL with ``nul``).

    Raises:
        InvalidValueError: It is not a string, or holds a lone surrogate (or a NUL).
    """
    if not isinstance(text, str):
        raise InvalidValueError(f"The {what} {text!r} is invalid: give a string.")
    return _check_unicode(text, what, nul=nul)


def _check_text_value(value: Any, limit: int, what: str, key: str) -> str:
    text = _check_unicode(value if isinstance(value, str) else str(value), f"{what} of {key!r}")
    if len(text) > limit:
        raise InvalidValueError(
            f"The {what} of {key!r} is {len(text)} characters long; the limit is {limit}. "
            f"Log long text as an artifact instead (log_text)."
        )
    return text


def check_param_value(key: str, value: Any) -> str:
    """Return a param's value as a string, checked against the 6,000-character limit.

    Raises:
        InvalidValueError: The value is too long.
    """
    return _check_text_value(value, MAX_PARAM_VALUE_LENGTH, "param value", key)


def check_tag_value(key: str, value: Any, *, experiment: bool = False) -> str:
    """Return a tag's value as a string, checked against its limit (8,000; 20,000 for experiments).

    Raises:
        InvalidValueError: The value is too long.
    """
    limit = MAX_EXPERIMENT_TAG_VALUE_LENGTH if experiment else MAX_TAG_VALUE_LENGTH
    return _check_text_value(value, limit, "tag value", key)


def check_experiment_name(name: Any) -> str:
    """Validate an experiment name and return it.

    Raises:
        InvalidValueError: The name is not a non-empty string of at most 500 characters.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"The experiment name {name!r} is invalid: give a non-empty string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidValueError(
            f"The experiment name {name[:40]!r}... is {len(name)} characters long; "
            f"the limit is {MAX_EXPERIMENT_NAME_LENGTH}."
        )
    return _check_unicode(name, "experiment name", nul=True)


def check_run_name(name: Any) -> str | None:
    """Validate a run name (None allowed) and return it.

    Raises:
        InvalidValueError: The name is not a string or is over 250 characters.
    """
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidValueError(f"The run name {name!r} is invalid: give a string.")
    if len(name) > MAX_RUN_NAME_LENGTH:
        raise InvalidValueError(
            f"The run name {name[:40]!r}... is {len(name)} characters long; the limit is "
            f"{MAX_RUN_NAME_LENGTH}."
        )
    return _check_unicode(name, "run name", nul=True)


def check_run_id(run_id: Any) -> str:
    """Validate the shape of a run id and return it.

    Raises:
        InvalidValueError: The id is not a string of letters, digits, ``_`` and ``-``.
    """
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise InvalidValueError(
            f"The run id {run_id!r} is invalid: run ids are 32 hexadecimal characters, as in "
            "run.info.run_id."
        )
    return run_id


def check_experiment_id(experiment_id: Any) -> str:
    """Return an experiment id as a string, refusing a number no store can hold (e.g. 40 digits).

    No store holds an id beyond 64 bits; such a number would reach the database driver and fail there
    (``OverflowError`` on SQLite). Other strings are passed on unchanged (the store answers not found).

    Raises:
        ExperimentNotFound: The id is an integer outside the signed 64-bit range.
    """
    text = str(experiment_id)
    try:
        number = int(text)
    except ValueError:  # not a number, or too many digits to convert at all
        number = 0 if not text.strip().lstrip("+-").isdigit() else MAX_INT64 + 1
    if -MAX_INT64 - 1 <= number <= MAX_INT64:
        return text
    shown = text if len(text) <= 45 else f"{text[:40]}...({len(text)} characters)"
    raise ExperimentNotFound(f"No experiment has the id {shown!r}: experiment ids are integers below 2**63, "
                             "such as '0'. List them with: fitscribe experiments list")


def check_metric_value(key: str, value: Any) -> float:
    """Return a metric value as a float; NaN and +-inf are allowed.

    Raises:
        InvalidValueError: The value is not a real number (strings, None, complex are refused).
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool):
        return float(value)
    try:
        # numpy scalars and 0-d arrays
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            item = value.item()
            if isinstance(item, numbers.Real):
                return float(item)
    except (TypeError, ValueError):
        pass
    raise InvalidValueError(
        f"The value of metric {key!r} is {value!r} ({type(value).__name__}); metrics are numbers. "
        "Log text as a param or tag instead."
    )


def check_int(value: Any, what: str) -> int:
    """Return ``value`` as a 64-bit int (steps, timestamps).

    Raises:
        InvalidValueError: The value is not an integer or does not fit in 64 bits.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer() and not math.isinf(value):
            value = int(value)
        else:
            raise InvalidValueError(f"The {what} {value!r} is invalid: give an integer.")
    number = int(value)
    if not -MAX_INT64 - 1 <= number <= MAX_INT64:
        raise InvalidValueError(f"The {what} {number} does not fit in a 64-bit integer.")
    return number


def check_model_name(name: Any, what: str = "registered model name") -> str:
    """Validate a registered model name and return it.

    Raises:
        InvalidValueError: The name is empty, longer than 256 characters or contains ``/`` or ``@``.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(f"The {what} {name!r} is invalid: give a non-empty string such as 'churn-model'.")
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidValueError(
            f"The {what} {name[:40]!r}... is {len(name)} characters long; the limit is {MAX_MODEL_NAME_LENGTH}."
        )
    for mark, role in (("/", "the name from the version (models:/<name>/<version>)"), ("@", "the name from an alias (models:/<name>@<alias>)")):
        if mark in name:
            raise InvalidValueError(
                f"The {what} {name!r} contains {mark!r}, which separates {role} in model URIs; "
                f"use '-', '_' or '.' instead, e.g. {name.replace(mark, '-')!r}."
            )
    return _check_unicode(name, what, nul=True)


def check_model_version(version: Any) -> int:
    """Return a model version number given as an int or a numeric string (``3`` or ``"3"``).

    Raises:
        InvalidValueError: The version is not a whole number.
    """
    if isinstance(version, str) and version.strip().isascii() and version.strip().isdigit():
        version = int(version.strip())
    if isinstance(version, bool) or not isinstance(version, numbers.Integral) or not 0 <= version <= MAX_INT64:
        raise InvalidValueError(
            f"The model version {version!r} is invalid: give a version number such as 3 or '3'."
        )
    return int(version)


def check_alias(alias: Any) -> str:
    """Validate a model alias (e.g. ``"champion"``) and return it.

    Raises:
        InvalidValueError: The alias is empty, over 255 characters, has characters other than
            letters, digits, ``_`` and ``-``, or is reserved (``latest``, ``v<digits>``).
    """
    if not isinstance(alias, str) or not alias:
        raise InvalidValueError(f"The model alias {alias!r} is invalid: give a non-empty string such as 'champion'.")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidValueError(
            f"The model alias {alias[:40]!r}... is {len(alias)} characters long; the limit is {MAX_ALIAS_LENGTH}."
        )
    if not _ALIAS_RE.match(alias):
        raise InvalidValueError(
            f"The model alias {alias!r} has characters that are not allowed; use letters, digits, '_' and '-' only."
        )
    if alias.lower() == "latest":
        raise InvalidValueError(
            f"The model alias {alias!r} is reserved: models:/<name>/latest already means the newest version. "
            "Choose another alias, e.g. 'champion'."
        )
    if _VERSION_ALIAS_RE.match(alias):
        raise InvalidValueError(
            f"The model alias {alias!r} is reserved: 'v<number>' reads as a version number. "
            "Choose another alias, e.g. 'champion'."
        )
    return alias


def check_description(description: Any) -> str | None:
    """Validate a registered model or model version description (None allowed) and return it.

    Raises:
        InvalidValueError: The description is not a string or is over 5,000 characters.
    """
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidValueError(f"The description {description!r} is invalid: give a string.")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidValueError(
            f"The description is {len(description)} characters long; the limit is {MAX_DESCRIPTION_LENGTH}. "
            "Log long documentation as an artifact of the run instead (log_text)."
        )
    return description


def check_source(source: Any) -> str:
    """Validate the source of a model version (the URI of its model files) and return it.

    Raises:
        InvalidValueError: The source is not a non-empty string.
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidValueError(
            f"The model source {source!r} is invalid: give the URI of the model files, "
            "e.g. 'runs:/<run_id>/model' or the run's artifact URI."
        )
    return source
