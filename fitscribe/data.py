"""``mlflow.data`` under its MLflow name: describe a DataFrame or arrays as a dataset of a run.

>>> import fitscribe as mlflow
>>> dataset = mlflow.data.from_pandas(df, source="data/train.csv", targets="label")   # doctest: +SKIP
>>> with mlflow.start_run():                                                          # doctest: +SKIP
...     mlflow.log_input(dataset, context="training")

The result is a :class:`fitscribe.entities.Dataset` (name, digest, source, schema, profile, in
MLflow's JSON layouts) that also keeps the data (``df``, ``features``, ``targets``). pandas and
numpy are imported only by the functions.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from fitscribe.entities import Dataset

__all__ = ["PandasDataset", "NumpyDataset", "from_pandas", "from_numpy"]

_MAX_ROWS = 10_000


@dataclass(frozen=True)
class PandasDataset(Dataset):
    """A dataset built from a pandas DataFrame (see :func:`from_pandas`)."""

    df: Any = field(default=None, repr=False, compare=False)
    targets: str | None = None
    predictions: str | None = None


@dataclass(frozen=True)
class NumpyDataset(Dataset):
    """A dataset built from numpy arrays (see :func:`from_numpy`)."""

    features: Any = field(default=None, repr=False, compare=False)
    targets: Any = field(default=None, repr=False, compare=False)


def _source(source: Any) -> tuple[str, str]:
    """MLflow's (source_type, source JSON) for a path or URI; ``code`` when there is none."""
    if source is None:
        return "code", json.dumps({"tags": {}})
    uri = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("http", "https"):
        return "http", json.dumps({"url": uri})
    if scheme in ("", "file"):
        return "local", json.dumps({"uri": uri})
    return scheme, json.dumps({"uri": uri})


def _digest(*parts: Any) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()[:8]


def from_pandas(df: Any, source: Any = None, targets: str | None = None, name: str | None = None,
                digest: str | None = None, predictions: str | None = None) -> PandasDataset:
    """Describe a DataFrame as a dataset, as ``mlflow.data.from_pandas``.

    Args:
        df: The data.
        source: Where it came from (a path or URI); recorded as the source.
        targets: The name of the label column, if any.
        name: The dataset's name (default ``"dataset"``).
        digest: A digest to record (default: computed from up to 10,000 rows).
        predictions: The name of a predictions column, if any.

    Raises:
        InvalidValueError: ``targets`` or ``predictions`` is not a column of ``df``.
    """
    import pandas as pd

    from fitscribe.errors import InvalidValueError

    for role, column in (("targets", targets), ("predictions", predictions)):
        if column is not None and column not in df.columns:
            raise InvalidValueError(f"{role}={column!r} is not a column of the DataFrame ({list(df.columns)[:20]}).")
    head = df.head(_MAX_ROWS)
    hashed = pd.util.hash_pandas_object(head.astype(str) if head.dtypes.eq(object).any() else head).to_numpy()
    source_type, source_json = _source(source)
    return PandasDataset(
        name=name or "dataset", digest=digest or _digest(hashed.tobytes(), len(df), list(df.columns)),
        source_type=source_type, source=source_json, schema=_pandas_schema(df),
        profile=json.dumps({"num_rows": int(len(df)), "num_elements": int(df.size)}),
        df=df, targets=targets, predictions=predictions,
    )


def _pandas_schema(df: Any) -> str | None:
    try:
        from fitscribe.flavors.signature import infer_signature

        inputs = infer_signature(df.head(1)).to_dict()["inputs"]
        return json.dumps({"mlflow_colspec": json.loads(inputs)})
    except Exception:  # an exotic column type: no schema rather than no dataset
        return None


def from_numpy(features: Any, source: Any = None, targets: Any = None, name: str | None = None,
               digest: str | None = None) -> NumpyDataset:
    """Describe numpy arrays (features and optional targets) as a dataset, as ``mlflow.data.from_numpy``."""
    import numpy as np

    parts: list[Any] = []
    spec: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    for role, value in (("features", features), ("targets", targets)):
        if value is None:
            continue
        array = np.asarray(value)
        parts += [np.ascontiguousarray(array[:_MAX_ROWS]).tobytes(), array.shape, str(array.dtype)]
        spec[role] = json.dumps({"type": "tensor", "tensor-spec": {"dtype": str(array.dtype),
                                                                   "shape": [-1, *array.shape[1:]]}})
        profile.update({f"{role}_shape": list(array.shape), f"{role}_size": int(array.size),
                        f"{role}_nbytes": int(array.nbytes)})
    source_type, source_json = _source(source)
    return NumpyDataset(
        name=name or "dataset", digest=digest or _digest(*parts), source_type=source_type, source=source_json,
        schema=json.dumps({"mlflow_tensorspec": spec}), profile=json.dumps(profile),
        features=features, targets=targets,
    )
