"""MLflow's scoring protocol: request bodies in, predictions out, errors as MLflow words them.

A JSON body is an object with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs``, and optionally ``params``; a CSV body is a table with a header row.
Parsing turns a body into what :meth:`PyFuncModel.predict <fitscribe.flavors.pyfunc.PyFuncModel.predict>`
takes (a DataFrame, an array or a dict of arrays), which then checks it against the model's
signature. Predictions are encoded as ``{"predictions": ...}``: arrays as lists, a DataFrame as a
list of records, a Series as records of a one-column frame (what ``mlflow models serve`` answers).

Every refusal is a :class:`ScoringError` carrying the HTTP status, MLflow's ``error_code`` and a
message that says what to send instead.
"""

from __future__ import annotations

import io
import json
from typing import Any

from fitscribe.flavors.signature import ModelSignature, TensorSpec

__all__ = ["FORMATS", "ScoringError", "FloatRows", "content_kind", "parse_json", "parse_csv", "check_params",
           "encode_predictions", "as_model_input"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
"""The keys a JSON body may use for its data (exactly one of them)."""

_JSON_DEPTH_LIMIT = 64


class ScoringError(Exception):
    """A request the scoring server refuses: ``status`` (4xx), MLflow's ``error_code``, ``message``."""

    def __init__(self, message: str, status: int = 400, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code

    def to_json(self) -> dict[str, str]:
        """Return the error body (MLflow's ``error_code`` and ``message`` keys)."""
        return {"error_code": self.error_code, "message": self.message}


class FloatRows:
    """A ``dataframe_split`` with string column names, no index, and a JSON float in every cell.

    Kept as one float64 array until predicted: :meth:`frame` makes the same DataFrame pandas makes
    from the rows, and the batcher turns the rows of many requests into one DataFrame (one frame
    built, one signature check, one prediction instead of one per request).
    """

    __slots__ = ("values", "columns")

    def __init__(self, values: Any, columns: list[str]) -> None:
        self.values = values
        self.columns = columns

    def __len__(self) -> int:
        return len(self.values)

    def frame(self) -> Any:
        """Return the rows as a DataFrame (float64 columns)."""
        import pandas as pd

        return pd.DataFrame(self.values, columns=self.columns, copy=False)


def as_model_input(data: Any) -> Any:
    """Return ``data`` as a model takes it: a :class:`FloatRows` becomes its DataFrame."""
    return data.frame() if type(data) is FloatRows else data


def content_kind(header: str | None) -> str:
    """Return ``"json"``, ``"csv"`` or ``"parquet"`` for a Content-Type header, or raise 415.

    Only ``charset=utf-8`` is accepted as a parameter, as by ``mlflow models serve``.
    """
    if not header or not header.strip():
        raise ScoringError("The request has no Content-Type; send application/json, text/csv or "
                           "application/vnd.apache.parquet.", 415, "BAD_REQUEST")
    media, *params = [part.strip() for part in header.split(";")]
    kinds = {"application/json": "json", "text/csv": "csv", "application/vnd.apache.parquet": "parquet"}
    kind = kinds.get(media.lower())
    if kind is None:
        raise ScoringError(f"Content-Type {media!r} is not supported; send application/json, text/csv or "
                           "application/vnd.apache.parquet.", 415)
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            raise ScoringError(f"Content-Type parameter {param!r} is not supported; only charset=utf-8 is.", 415)
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ScoringError("The scoring server reads UTF-8 only; send charset=utf-8.", 415)
    return kind


def _load_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ScoringError(f"The body is not valid UTF-8 JSON ({type(exc).__name__}: {_short(exc)}).") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Refuse JSON nested deeper than any tabular or tensor input needs (a 400, not a RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _JSON_DEPTH_LIMIT:
            raise ScoringError(f"The JSON body is nested more than {_JSON_DEPTH_LIMIT} levels deep.")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_json(body: bytes, signature: ModelSignature | None) -> tuple[Any, dict[str, Any] | None]:
    """Parse a JSON scoring request into (model input, params).

    The model input is a DataFrame, an array, a dict of arrays, or a :class:`FloatRows` (turn it
    into a DataFrame with :func:`as_model_input`).

    Raises:
        ScoringError: Not JSON, not an object, not exactly one data key, or data of the wrong shape.
    """
    value = _load_json(body)
    if isinstance(value, list):
        raise ScoringError(_one_key_message("a list"))
    if not isinstance(value, dict):
        raise ScoringError(_one_key_message(f"a JSON {type(value).__name__}"))
    keys = [k for k in FORMATS if k in value]
    if len(keys) != 1:
        raise ScoringError(_one_key_message(f"an object with the keys {sorted(value)}"))
    params = value.get("params")
    if params is not None and not isinstance(params, dict):
        raise ScoringError(f"'params' must be a JSON object of name -> value, not {type(params).__name__}.",
                           400, "INVALID_PARAMETER_VALUE")
    key = keys[0]
    if key == "dataframe_split":
        return _frame_from_split(value[key]), params
    if key == "dataframe_records":
        return _frame_from_records(value[key]), params
    return _tensor_input(key, value[key], signature), params


def _one_key_message(got: str) -> str:
    return ("The body must be a JSON object with exactly one of the keys "
            f"{', '.join(FORMATS)} (and optionally 'params'); got {got}. "
            "A bare {'columns': ..., 'data': ...} table goes under 'dataframe_split'.")


def _frame_from_split(split: Any) -> Any:
    import pandas as pd

    if not isinstance(split, dict) or "data" not in split:
        raise ScoringError("'dataframe_split' must be an object with 'columns' and 'data' (and optionally 'index').")
    data, columns, index = split.get("data"), split.get("columns"), split.get("index")
    if not isinstance(data, list) or (columns is not None and not isinstance(columns, list)):
        raise ScoringError("'dataframe_split' needs 'data' as a list of rows and 'columns' as a list of names.")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise ScoringError(f"'dataframe_split' has {len(data)} rows but its 'index' does not list one label per row.")
    width = len(columns) if columns is not None else None
    for number, row in enumerate(data):
        if not isinstance(row, list) or (width is not None and len(row) != width):
            raise ScoringError(f"'dataframe_split' row {number} is not a list of {width} values, one per column.")
    try:
        if width and data and all(type(v) is float for row in data for v in row):
            import numpy as np

            # The usual request, every value a JSON float: one float64 array makes the same frame as
            # pandas' per-cell inference, in half the time.
            values = np.array(data, dtype=np.float64)
            if index is None and all(type(c) is str for c in columns):
                return FloatRows(values, columns)
            return pd.DataFrame(values, columns=columns, index=index, copy=False)
        return pd.DataFrame(data=data, columns=columns, index=index)
    except (ValueError, TypeError) as exc:
        raise ScoringError(f"'dataframe_split' does not make a table: {_short(exc)}") from None


def _frame_from_records(records: Any) -> Any:
    import pandas as pd

    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ScoringError("'dataframe_records' must be a list of objects, one per row (column name -> value).")
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _tensor_input(key: str, items: Any, signature: ModelSignature | None) -> Any:
    """``instances``/``inputs`` as TF Serving has them: records -> dict of columns, lists -> an array."""
    import numpy as np

    dtypes = _tensor_dtypes(signature)
    if isinstance(items, dict):
        return {name: _array(v, dtypes.get(name), f"{key}.{name}") for name, v in items.items()}
    if not isinstance(items, list):
        raise ScoringError(f"'{key}' must be a list (of rows or records) or an object of name -> values.")
    if items and all(isinstance(r, dict) for r in items):
        columns: dict[str, list[Any]] = {}
        for record in items:
            for name, v in record.items():
                columns.setdefault(name, []).append(v)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ScoringError(f"The records in '{key}' do not all have the same keys.")
        return {name: _array(v, dtypes.get(name), f"{key}.{name}") for name, v in columns.items()}
    only = next(iter(dtypes.values())) if len(dtypes) == 1 else None
    return _array(items, only, key) if items else np.asarray(items)


def _array(values: Any, dtype: str | None, what: str) -> Any:
    import numpy as np

    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged lists
        raise ScoringError(f"'{what}' is not a regular array: {_short(exc)}") from None
    if array.dtype == object and array.ndim > 1:
        raise ScoringError(f"'{what}' is not a regular array: rows of different lengths or mixed types.")
    if dtype is not None and array.dtype.kind in "iub" and np.dtype(dtype).kind == "f":
        array = array.astype(dtype)  # JSON has no float 1.0 vs 1: integers given for a float tensor
    return array


def _tensor_dtypes(signature: ModelSignature | None) -> dict[str | None, str]:
    inputs = signature.inputs if signature is not None else None
    if not inputs or not isinstance(inputs[0], TensorSpec):
        return {}
    return {spec.name: spec.dtype for spec in inputs}


def parse_csv(body: bytes) -> Any:
    """Parse a CSV body (header row, then rows) into a DataFrame.

    Raises:
        ScoringError: Not UTF-8 or not a table.
    """
    import pandas as pd

    try:
        return pd.read_csv(io.StringIO(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise ScoringError(f"The body is not a CSV table with a header row: {_short(exc)}") from None


def parse_parquet(body: bytes) -> Any:
    """Parse a Parquet body into a DataFrame (needs pyarrow or fastparquet)."""
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(body))
    except ImportError:
        raise ScoringError("This server cannot read Parquet (no pyarrow installed); send JSON or CSV.", 415) from None
    except Exception as exc:  # pyarrow raises its own error classes for a broken file
        raise ScoringError(f"The body is not a Parquet table: {_short(exc)}") from None


_PARAM_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "datetime": lambda v: isinstance(v, str),
    "binary": lambda v: isinstance(v, str),
}


def param_specs(signature: ModelSignature | None) -> list[dict[str, Any]]:
    """Return the signature's params schema as a list of ``{name, type, default, shape}``."""
    raw = signature.params if signature is not None else None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if isinstance(raw, dict):
        raw = raw.get("params", [])
    return [p for p in raw or [] if isinstance(p, dict) and "name" in p]


def check_params(params: dict[str, Any] | None, signature: ModelSignature | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Check request params against the signature's params schema.

    Returns:
        The params to pass (defaults filled in; None when the model takes none) and the names
        ignored because the schema does not declare them (MLflow ignores them too).

    Raises:
        ScoringError: A declared param has a value of the wrong type (INVALID_PARAMETER_VALUE).
    """
    specs = param_specs(signature)
    if not specs:
        return None, sorted(params or {})
    given = dict(params or {})
    out: dict[str, Any] = {}
    for spec in specs:
        name, kind, shape = spec["name"], str(spec.get("type", "string")), spec.get("shape")
        if name not in given:
            if spec.get("default") is not None:
                out[name] = spec["default"]
            continue
        value = given.pop(name)
        check = _PARAM_CHECKS.get(kind, lambda v: True)
        values = value if shape else [value]
        if shape and not isinstance(value, list):
            raise ScoringError(f"Param {name!r} takes a list of {kind} values, not {type(value).__name__}.",
                               400, "INVALID_PARAMETER_VALUE")
        bad = [v for v in values if not check(v)]
        if bad:
            raise ScoringError(f"Param {name!r} takes {kind} values; {bad[0]!r} is not one.", 400,
                               "INVALID_PARAMETER_VALUE")
        out[name] = value
    return out, sorted(given)


def _plain(value: Any) -> Any:
    """Turn numpy/pandas values into JSON-ready Python values (NaN stays NaN, as MLflow writes it)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def encode_predictions(predictions: Any) -> bytes:
    """Return ``{"predictions": ...}`` as JSON bytes, shaped as ``mlflow models serve`` answers."""
    module = type(predictions).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(predictions, pd.Series):
            predictions = predictions.to_frame()
        if isinstance(predictions, pd.DataFrame):
            predictions = predictions.to_dict(orient="records")
    elif module.startswith("torch"):
        predictions = predictions.detach().cpu().numpy()
    return json.dumps({"predictions": _plain(predictions)}, allow_nan=True).encode("utf-8")

