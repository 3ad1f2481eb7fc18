"""Input examples: a few rows of model input saved as ``input_example.json`` and read back.

DataFrames use pandas' ``split`` orient (``{"columns": [...], "data": [[...]]}``), as MLflow writes
them; arrays are nested lists; dicts and lists are stored as they are. NaN and infinities are kept
(JSON's ``NaN``/``Infinity`` tokens, which Python's json module reads back).
"""

from __future__ import annotations

import json
import os
from typing import Any

from fitscribe.errors import InvalidValueError

__all__ = ["EXAMPLE_FILE", "save_example", "load_example"]

EXAMPLE_FILE = "input_example.json"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def save_example(folder: str, example: Any) -> dict[str, Any]:
    """Write ``example`` into ``folder`` and return the ``saved_input_example_info`` block.

    Raises:
        InvalidValueError: The example cannot be represented as JSON.
    """
    module = type(example).__module__.split(".")[0]
    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILE}
    if module == "pandas" and hasattr(example, "to_dict"):
        frame = example.to_frame() if example.ndim == 1 else example
        payload: Any = {"columns": [str(c) for c in frame.columns], "data": _jsonable(frame.to_numpy())}
        info.update(type="dataframe", pandas_orient="split")
    elif module == "numpy" or hasattr(example, "__array__") and module != "builtins":
        import numpy as np

        payload = _jsonable(np.asarray(example))
        info.update(type="ndarray")
    elif isinstance(example, dict) and example and all(hasattr(v, "__array__") for v in example.values()):
        payload = {"inputs": _jsonable(example)}
        info.update(type="ndarray", format="tf-serving")
    else:
        payload = _jsonable(example)
        info.update(type="json_object")
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(
            f"The input_example of type {type(example).__name__} cannot be saved as JSON ({exc}); "
            "pass a DataFrame, a numpy array, or a dict/list of numbers and strings."
        ) from exc
    with open(os.path.join(folder, EXAMPLE_FILE), "w", encoding="utf-8") as fh:
        fh.write(text)
    return info


def load_example(folder: str, info: dict[str, Any] | None) -> Any:
    """Read a saved input example back as a DataFrame, ndarray or plain JSON value; None if absent."""
    if not info:
        return None
    path = os.path.join(folder, str(info.get("artifact_path", EXAMPLE_FILE)))
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        payload = json.load(fh)
    kind = info.get("type")
    if kind == "dataframe":
        import pandas as pd

        if isinstance(payload, dict) and "dataframe_split" in payload:
            payload = payload["dataframe_split"]
        return pd.DataFrame(payload["data"], columns=payload["columns"])
    if kind == "ndarray":
        import numpy as np

        if isinstance(payload, dict) and "inputs" in payload:
            inputs = payload["inputs"]
            if isinstance(inputs, dict):
                return {k: np.asarray(v) for k, v in inputs.items()}
            return np.asarray(inputs)
        return np.asarray(payload)
    return payload
