"""Best-effort logging helpers shared by the integrations.

Each item is logged on its own terms: an over-long value is truncated with a note in the report,
a key over the limit or a param that conflicts with a value already in the run is skipped with
the reason, and one bad item never drops the others (a batch that fails is retried item by item).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Mapping

from fitscribe._time import now_ms
from fitscribe.entities import Dataset, Metric, Param, RunTag
from fitscribe.errors import FitscribeError
from fitscribe.validation import MAX_KEY_LENGTH, MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH

if TYPE_CHECKING:  # pragma: no cover
    from fitscribe.autolog._session import TrainingCall

__all__ = ["log_params", "log_metrics", "set_tags", "log_dataset", "dataset_digest", "head_rows"]

_BATCH = 100


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _checked(call: "TrainingCall", kind: str, items: Mapping[str, Any], limit: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in items.items():
        key = str(key)
        if len(key) > MAX_KEY_LENGTH or not key:
            call.skip(f"{kind} {key[:60]!r}", f"key length {len(key)} outside 1..{MAX_KEY_LENGTH}")
            continue
        text = _text(value)
        if len(text) > limit:
            call.notes.append(f"{kind} {key!r} truncated from {len(text)} to {limit} characters")
            text = text[:limit]
        out[key] = text
    return out


def log_params(call: "TrainingCall", params: Mapping[str, Any]) -> None:
    """Log params; conflicting values already in the run are skipped and reported."""
    assert call.run_id is not None
    checked = _checked(call, "param", params, MAX_PARAM_VALUE_LENGTH)
    existing = {} if call.managed else call.client.get_run(call.run_id).data.params
    fresh = {}
    for key, value in checked.items():
        if key in existing and existing[key] != value:
            call.skip(f"param {key!r}", f"the run already has {key}={existing[key]!r}; new value {value!r} not logged")
        elif key not in existing:
            fresh[key] = value
    logged = _batched(call, "param", [Param(k, v) for k, v in fresh.items()], "params")
    call.record("params", *(p.key for p in logged))


def set_tags(call: "TrainingCall", tags: Mapping[str, Any]) -> None:
    """Set tags on the run, each on its own."""
    checked = _checked(call, "tag", tags, MAX_TAG_VALUE_LENGTH)
    logged = _batched(call, "tag", [RunTag(k, v) for k, v in checked.items()], "tags")
    call.record("tags", *(t.key for t in logged))


def log_metrics(call: "TrainingCall", metrics: Mapping[str, Any], step: int = 0) -> None:
    """Log numeric metrics at ``step``; non-numeric values are skipped and reported."""
    now = now_ms()
    points = []
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            call.skip(f"metric {key!r}", f"value {value!r} is not a number")
            continue
        if isinstance(value, bool):
            call.skip(f"metric {key!r}", "booleans are not logged as metrics")
            continue
        points.append(Metric(str(key), number, now, step))
    logged = _batched(call, "metric", points, "metrics")
    call.record("metrics", *(p.key for p in logged))


def _batched(call: "TrainingCall", kind: str, items: list[Any], field: str) -> list[Any]:
    """Log ``items`` in batches; retry a refused batch item by item. Return the items logged."""
    assert call.run_id is not None
    logged: list[Any] = []
    for start in range(0, len(items), _BATCH):
        chunk = items[start : start + _BATCH]
        try:
            call.client.log_batch(call.run_id, **{field: chunk})
            logged += chunk
        except FitscribeError:
            for item in chunk:  # one bad item must not drop the rest
                try:
                    call.client.log_batch(call.run_id, **{field: [item]})
                    logged.append(item)
                except FitscribeError as exc:
                    call.skip(f"{kind} {item.key!r}", str(exc))
    return logged


def head_rows(data: Any, n: int = 5) -> Any:
    """Return a copy of the first ``n`` rows of X (DataFrame, array, sparse matrix, list), or None."""
    if data is None:
        return None
    try:
        if hasattr(data, "iloc"):
            return data.iloc[:n].copy()
        if hasattr(data, "toarray"):
            return data[:n].toarray()
        import numpy as np

        return np.array(data[:n], copy=True)
    except Exception:  # an exotic input type: no example, noted by the caller
        return None


def dataset_digest(data: Any, target: Any = None) -> str:
    """Return an 8-hex digest of X (and y) from its shape, dtypes and up to 10,000 rows."""
    digest = hashlib.sha256()
    for part in (data, target):
        if part is None:
            continue
        try:
            sample = part.iloc[:10_000] if hasattr(part, "iloc") else part[:10_000]
            if hasattr(sample, "to_numpy"):
                digest.update(str(list(getattr(sample, "columns", []))).encode())
                sample = sample.to_numpy()
            if hasattr(sample, "toarray"):
                sample = sample.toarray()
            import numpy as np

            array = np.ascontiguousarray(sample)
            digest.update(f"{getattr(part, 'shape', None)}{array.dtype}".encode())
            digest.update(array.tobytes() if array.dtype.kind != "O" else repr(array.tolist()).encode())
        except Exception:  # fall back to the type and length
            digest.update(f"{type(part).__name__}{len(part) if hasattr(part, '__len__') else ''}".encode())
    return digest.hexdigest()[:8]


def _schema(data: Any) -> str | None:
    try:
        from fitscribe.flavors.signature import infer_signature

        sig = infer_signature(head_rows(data, 1))
        return sig.to_dict()["inputs"]
    except Exception:  # no schema for exotic inputs
        return None


def log_dataset(call: "TrainingCall", data: Any, target: Any = None, context: str = "train", name: str = "dataset") -> None:
    """Record X (and y) as a dataset input of the run, with a digest and schema."""
    assert call.run_id is not None
    shape = getattr(data, "shape", None)  # a sparse matrix has a shape and refuses len()
    rows = shape[0] if shape else (len(data) if hasattr(data, "__len__") else 0)
    dataset = Dataset(
        name=name, digest=dataset_digest(data, target), source_type="code", source="",
        schema=_schema(data), profile=f'{{"num_rows": {int(rows)}}}',
    )
    call.client.log_input(call.run_id, dataset, context=context)
    call.record("datasets", f"{name} ({context})")
