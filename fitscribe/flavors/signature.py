"""Model signatures: what a model takes and returns, inferred from examples and enforced on predict.

The JSON form is MLflow's: a column schema is a list of ``{"type": "double", "name": "a",
"required": true}``; a tensor schema a list of ``{"type": "tensor", "tensor-spec": {"dtype":
"float32", "shape": [-1, 4]}}``. In ``MLmodel`` each part is a JSON string.

Enforcement converts what a caller passes (DataFrame, ndarray, dict, list) to what the model was
trained on and refuses, naming the column, what would lose information: a missing column, text where
numbers are expected, a float where an integer is expected. Integers become floats only when every
value is exactly representable (MLflow refuses every int64 -> double cast).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from fitscribe.errors import FitscribeWarning, InvalidValueError, MissingDependencyError

__all__ = ["ColSpec", "TensorSpec", "ModelSignature", "infer_signature", "SchemaError"]

# MLflow column type -> numpy dtype name.
_COLUMN_DTYPES = {
    "boolean": "bool", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
    "string": "object", "binary": "object", "datetime": "datetime64[ns]",
}
_EXACT_INT_BITS = {"float32": 24, "float64": 53}


class SchemaError(InvalidValueError):
    """Input given to ``predict`` does not match the model's signature."""


@dataclass(frozen=True)
class ColSpec:
    """One named (or unnamed) column: MLflow type name, name, whether it is required."""

    type: str
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return MLflow's JSON form."""
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: numpy dtype name and shape (-1 for a free dimension), optionally named."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return MLflow's JSON form."""
        out: dict[str, Any] = {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}
        if self.name is not None:
            out["name"] = self.name
        return out


Schema = list[Any]  # list[ColSpec] or list[TensorSpec]


def _schema_from_json(text: str | None) -> Schema | None:
    if not text:
        return None
    items = json.loads(text) if isinstance(text, str) else text
    out: Schema = []
    for item in items:
        if item.get("type") == "tensor":
            spec = item["tensor-spec"]
            out.append(TensorSpec(str(spec["dtype"]), tuple(int(d) for d in spec["shape"]), item.get("name")))
        else:
            out.append(ColSpec(str(item["type"]), item.get("name"), bool(item.get("required", True))))
    return out


@dataclass(frozen=True)
class ModelSignature:
    """The inputs and outputs of a model (and MLflow's optional params schema, kept verbatim)."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Return the ``signature`` block of ``MLmodel``: each part a JSON string, as MLflow writes it."""
        def dump(schema: Schema | None) -> str | None:
            return None if schema is None else json.dumps([s.to_dict() for s in schema])

        return {"inputs": dump(self.inputs), "outputs": dump(self.outputs), "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ModelSignature | None":
        """Parse the ``signature`` block of ``MLmodel``; None when absent."""
        if not data:
            return None
        return cls(_schema_from_json(data.get("inputs")), _schema_from_json(data.get("outputs")), data.get("params"))

    def enforce(self, data: Any) -> Any:
        """Convert ``data`` to the input the model expects, or raise :class:`SchemaError`."""
        if not self.inputs:
            return data
        if isinstance(self.inputs[0], TensorSpec):
            return _enforce_tensors(data, self.inputs)
        return _enforce_columns(data, self.inputs)


def _column_type(dtype: Any, values: Any = None) -> str:
    import numpy as np

    kind = np.dtype(dtype).kind if not hasattr(dtype, "kind") else dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer" if np.dtype(dtype).itemsize <= 4 and kind == "i" else "long"
    if kind == "f":
        return "float" if np.dtype(dtype).itemsize <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    if values is not None and len(values) and all(isinstance(v, (bytes, bytearray)) for v in values[:100]):
        return "binary"
    return "string"


def _schema_of(data: Any) -> Schema:
    import numpy as np

    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(data, pd.Series):
            return [ColSpec(_column_type(data.dtype, data.values), None if data.name is None else str(data.name))]
        if isinstance(data, pd.DataFrame):
            return [ColSpec(_column_type(data[c].dtype, data[c].values), str(c)) for c in data.columns]
    if isinstance(data, dict):
        if all(isinstance(v, np.ndarray) for v in data.values()):
            return [TensorSpec(v.dtype.name, (-1, *v.shape[1:]), str(k)) for k, v in data.items()]
        return [ColSpec(_column_type(np.asarray(v).dtype, np.atleast_1d(np.asarray(v, dtype=object))), str(k)) for k, v in data.items()]
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        keys = list(dict.fromkeys(k for row in data for k in row))
        return [ColSpec(_column_type(np.asarray([r.get(k) for r in data]).dtype), str(k)) for k in keys]
    if module == "scipy":
        return [TensorSpec(data.dtype.name, (-1, *data.shape[1:]))]
    array = data if isinstance(data, np.ndarray) else np.asarray(data)
    if array.dtype.kind == "O":
        return [ColSpec("string")]
    return [TensorSpec(array.dtype.name, (-1, *array.shape[1:]))]


def infer_signature(model_input: Any, model_output: Any = None, params: Any = None) -> ModelSignature:
    """Infer a signature from an example input and, optionally, the model's output for it.

    DataFrames give column schemas (names and types); numpy arrays give tensor schemas with the
    first dimension free.

    >>> import numpy as np
    >>> infer_signature(np.zeros((2, 3))).to_dict()["inputs"]
    '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'
    """
    return ModelSignature(
        _schema_of(model_input), None if model_output is None else _schema_of(model_output), params
    )


# --- enforcement -------------------------------------------------------------------------------

def _safe_cast(values: Any, target: str, what: str) -> Any:
    """Cast a numpy array to ``target`` dtype when no information is lost; else raise."""
    import numpy as np

    source = values.dtype
    tgt = np.dtype(target)
    if source == tgt or target == "object":
        return values
    if source.kind in "iu" and tgt.kind == "f":  # numpy calls int64 -> float64 "safe"; it is not above 2**53
        bits = _EXACT_INT_BITS.get(tgt.name, 53)
        if values.size == 0 or int(np.max(np.abs(values.astype(np.int64)))) <= 2**bits:
            return values.astype(tgt)
        raise SchemaError(
            f"{what} has integers too large to be exact as {tgt.name} (largest {np.max(np.abs(values))}); "
            f"pass {tgt.name} values."
        )
    if np.can_cast(source, tgt, casting="safe"):
        return values.astype(tgt)
    if source.kind == "f" and tgt.kind == "f":  # float64 -> float32: allowed when finite values fit
        finite = values[np.isfinite(values)]
        if finite.size == 0 or float(np.max(np.abs(finite))) <= float(np.finfo(tgt).max):
            return values.astype(tgt)
    if source.kind in "iu" and tgt.kind in "iu":
        if values.size == 0 or (np.min(values) >= np.iinfo(tgt).min and np.max(values) <= np.iinfo(tgt).max):
            return values.astype(tgt)
    if source.kind == "O" and tgt.kind in "fiub":
        try:
            converted = values.astype(tgt)
        except (TypeError, ValueError):
            converted = None
        if converted is not None and all(not isinstance(v, str) for v in values.tolist()):
            return converted
    raise SchemaError(
        f"{what} has type {source.name} but the model expects {tgt.name}, and the conversion would lose "
        f"information. Pass {tgt.name} values."
    )


def _to_frame(data: Any, columns: Sequence[ColSpec]) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError.for_package("pandas", "pandas", "Predicting with a column signature") from exc
    import numpy as np

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame() if data.name is not None else pd.DataFrame({columns[0].name: data})
    if isinstance(data, dict):
        columns_data = {}
        for key, value in data.items():
            array = np.atleast_1d(np.asarray(value))
            if array.ndim == 2 and array.shape[1] == 1:
                array = array.ravel()
            if array.ndim != 1:
                raise SchemaError(
                    f"Input {key!r} has shape {array.shape}; a column takes one value per row. "
                    "Pass a list or a 1-D array per column."
                )
            columns_data[key] = array
        return pd.DataFrame(columns_data)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(1, -1) if len(columns) > 1 else array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != len(columns):
        raise SchemaError(
            f"The model expects {len(columns)} columns {[c.name for c in columns]}, got input of shape "
            f"{array.shape}. Pass a DataFrame or a dict with these columns."
        )
    names = [c.name if c.name is not None else i for i, c in enumerate(columns)]
    return pd.DataFrame(array, columns=names)


def _enforce_columns(data: Any, columns: Sequence[ColSpec]) -> Any:
    frame = _to_frame(data, columns)
    if any(c.name is None for c in columns):
        return frame
    wanted = [c.name for c in columns]
    present = {str(c) for c in frame.columns}
    missing = [c.name for c in columns if c.required and c.name not in present]
    extra = [c for c in frame.columns if str(c) not in set(wanted)]
    if missing:
        raise SchemaError(
            f"The input is missing the column(s) {missing} the model needs"
            + (f" (it has extra columns {extra})" if extra else "")
            + f". Expected columns: {wanted}."
        )
    if extra:
        warnings.warn(f"Ignoring input columns the model does not use: {extra}", FitscribeWarning, stacklevel=4)
    frame = frame[[c for c in wanted if c in present]] if extra or list(frame.columns) != wanted else frame
    for spec in columns:
        if spec.name not in present or spec.type in ("string", "binary", "datetime"):
            if spec.name in present and spec.type == "string" and frame[spec.name].dtype.kind in "fiub":
                raise SchemaError(
                    f"Column {spec.name!r} holds {frame[spec.name].dtype.name} values but the model expects text."
                )
            continue
        target = _COLUMN_DTYPES[spec.type]
        column = frame[spec.name].to_numpy()
        cast = _safe_cast(column, target, f"Column {spec.name!r}")
        if cast is not column:
            frame = frame.copy() if frame is data else frame
            frame[spec.name] = cast
    return frame


def _enforce_tensors(data: Any, tensors: Sequence[TensorSpec]) -> Any:
    import numpy as np

    if len(tensors) > 1 or tensors[0].name is not None and isinstance(data, dict):
        if hasattr(data, "columns") and all(t.name in data.columns for t in tensors):
            data = {t.name: data[t.name].to_numpy() for t in tensors}  # one column per named tensor
        if not isinstance(data, dict):
            raise SchemaError(
                f"The model takes {len(tensors)} named tensors {[t.name for t in tensors]}; pass a dict of arrays."
            )
        missing = [t.name for t in tensors if t.name not in data]
        if missing:
            raise SchemaError(f"The input is missing the tensor(s) {missing}; expected {[t.name for t in tensors]}.")
        return {t.name: _enforce_tensor(np.asarray(data[t.name]), t) for t in tensors}
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    elif type(data).__module__.startswith("scipy"):
        return data
    return _enforce_tensor(np.asarray(data), tensors[0])


def _enforce_tensor(array: Any, spec: TensorSpec) -> Any:
    what = f"Tensor {spec.name!r}" if spec.name else "The input"
    if array.ndim == len(spec.shape) - 1 and spec.shape[0] == -1 and array.ndim >= 1:
        array = array.reshape(1, *array.shape)  # one row given without the batch dimension
    if array.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape)
    ):
        raise SchemaError(
            f"{what} has shape {tuple(array.shape)} but the model expects {tuple(spec.shape)} (-1 = any size)."
        )
    return _safe_cast(array, spec.dtype, what)
