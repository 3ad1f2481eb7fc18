"""Typed access to a request's parameters: the JSON body, or the query string of a GET.

MLflow's conventions: GET parameters are in the query string with repeated keys for lists; other
methods send a JSON object. int64 fields may be JSON numbers or numeric strings; doubles may be the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. A missing or wrongly typed value raises
:class:`~fitscribe.errors.InvalidValueError` (answered 400 ``INVALID_PARAMETER_VALUE``).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from fitscribe.errors import InvalidValueError

__all__ = ["Params", "MISSING_MESSAGE", "parse_json_body"]

MISSING_MESSAGE = "Missing value for required parameter '{}'."
_NON_FINITE = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}
MAX_INT64 = 2**63 - 1
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """Decode a JSON request body into an object; an empty body is ``{}``.

    Raises:
        InvalidValueError: The body is not JSON, or not a JSON object.
    """
    import json

    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InvalidValueError("The request body nests arrays and objects too deeply to parse.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidValueError(f"The request body must be a JSON object, not {type(data).__name__}.")
    if _SURROGATE_ESCAPE.search(raw):
        _refuse_lone_surrogates(data)
    return data


def _refuse_lone_surrogates(data: Any) -> None:
    """Refuse text holding a lone UTF-16 surrogate (``"\\ud800"``): it cannot be stored or sent back."""
    import json

    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:  # json.loads parsed it, so this is rare; refuse all the same
        raise InvalidValueError("The request body nests arrays and objects too deeply.") from None
    except UnicodeEncodeError:
        raise InvalidValueError(
            "The request body holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair); "
            "text must be valid Unicode."
        ) from None


def _type_error(name: str, value: Any, expected: str) -> InvalidValueError:
    shown = repr(value)
    if len(shown) > 100:
        shown = shown[:97] + "..."
    return InvalidValueError(
        f"Invalid value {shown} for parameter '{name}' supplied: expected {expected}, got {type(value).__name__}."
    )


class Params:
    """The parameters of one request.

    Args:
        data: Field name -> value. For a query string, each value is the list of its occurrences.
        from_query: True when ``data`` came from a query string (every value a list of strings).
        headers: The request's headers (names looked up case-insensitively by :meth:`header`).
    """

    __slots__ = ("_data", "_query", "_headers")

    def __init__(self, data: Mapping[str, Any], *, from_query: bool = False,
                 headers: Mapping[str, str] | None = None) -> None:
        self._data = data
        self._query = from_query
        self._headers = headers

    def header(self, name: str) -> str | None:
        """Return a request header's value, or None (``name`` in lower case)."""
        return self._headers.get(name) if self._headers is not None else None

    def __contains__(self, name: str) -> bool:
        return self._raw(name) is not None

    def _raw(self, name: str) -> Any:
        value = self._data.get(name)
        if self._query and isinstance(value, list):
            return value[-1] if value else None
        return value

    def is_null(self, name: str) -> bool:
        """Return True when the JSON body sent ``name`` as ``null`` (not the same as leaving it out)."""
        return not self._query and name in self._data and self._data[name] is None

    def missing(self, name: str) -> InvalidValueError:
        """Return the error for a required parameter that was not sent."""
        return InvalidValueError(MISSING_MESSAGE.format(name))

    def text(self, name: str, *, required: bool = False) -> str | None:
        """Return a string parameter (a JSON integer is accepted and converted), or None."""
        value = self._raw(name)
        if value is None:
            if required:
                raise self.missing(name)
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _type_error(name, value, "a string")

    def required_text(self, name: str) -> str:
        """Return a string parameter that must be present and non-empty."""
        value = self.text(name, required=True)
        if not value:
            raise self.missing(name)
        return value

    def integer(self, name: str, default: int | None = None, *, minimum: int | None = None,
            maximum: int | None = None, required: bool = False) -> int | None:
        """Return an int64 parameter (a JSON number or a numeric string) within the given bounds."""
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise self.missing(name)
            return default
        if isinstance(value, bool):
            raise _type_error(name, value, "an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise _type_error(name, value, "an integer") from None
        if not isinstance(value, int):
            raise _type_error(name, value, "an integer")
        low = -MAX_INT64 - 1 if minimum is None else minimum
        high = MAX_INT64 if maximum is None else maximum
        if not low <= value <= high:
            raise InvalidValueError(f"Invalid value {value} for parameter '{name}': it must be from {low} to {high}.")
        return value

    def double(self, name: str, *, required: bool = False) -> float | None:
        """Return a double: a JSON number, a numeric string, or ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
        return to_double(self._raw(name), name, required=required)

    def flag(self, name: str, default: bool = False) -> bool:
        """Return a boolean parameter (JSON true/false, or the strings ``true``/``false``)."""
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _type_error(name, value, "true or false")

    def strings(self, name: str) -> list[str]:
        """Return a repeated string parameter (``[]`` when absent)."""
        value = self._data.get(name)
        if value is None:
            return []
        if not self._query and isinstance(value, str):
            raise _type_error(name, value, "a list of strings")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str):
                raise _type_error(name, item, "a list of strings")
        return list(items)

    def objects(self, name: str) -> list[dict[str, Any]]:
        """Return a repeated message parameter: a JSON list of objects (``[]`` when absent)."""
        value = self._data.get(name)
        if value is None:
            return []
        if self._query or not isinstance(value, list):
            raise _type_error(name, value, "a JSON list of objects")
        for item in value:
            if not isinstance(item, dict):
                raise _type_error(name, item, "a JSON object")
        return value

    def run_id(self) -> str:
        """Return ``run_id``, else MLflow's older spelling ``run_uuid``; one of them is required."""
        value = self.text("run_id") or self.text("run_uuid")
        if not value:
            raise self.missing("run_id")
        return value


def to_double(value: Any, name: str, *, required: bool = True) -> float | None:
    """Convert a JSON double (number, numeric string, or a NaN/infinity string) to a float.

    Raises:
        InvalidValueError: The value is missing (when required), a boolean, or not a number.
    """
    if value is None:
        if required:
            raise InvalidValueError(MISSING_MESSAGE.format(name))
        return None
    if isinstance(value, bool):
        raise _type_error(name, value, "a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise _type_error(name, value, "a number within the range of a double") from None
    if isinstance(value, str):
        special = _NON_FINITE.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _type_error(name, value, 'a number (or "NaN", "Infinity", "-Infinity")')
