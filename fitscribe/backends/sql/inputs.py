"""Recording the datasets a run used (log_inputs)."""

from __future__ import annotations

import uuid
from typing import Sequence

import sqlalchemy as sa

from fitscribe.entities import DatasetInput
from fitscribe.errors import InvalidValueError

from . import tables as t

__all__ = ["write_inputs", "check_dataset_input"]

_LIMITS = {"name": 500, "digest": 36, "source_type": 36, "source": 65535, "schema": 1048575, "profile": 16777215}


def check_dataset_input(item: DatasetInput) -> None:
    """Check a dataset input against MLflow's limits.

    Raises:
        InvalidValueError: A field is missing or too long.
    """
    dataset = item.dataset
    if not dataset.name or not dataset.digest:
        raise InvalidValueError(f"A dataset needs a name and a digest; got name={dataset.name!r}, digest={dataset.digest!r}.")
    for field, limit in _LIMITS.items():
        value = getattr(dataset, field) or ""
        if len(value) > limit:
            raise InvalidValueError(
                f"The dataset {dataset.name[:40]!r} has a {field} of {len(value)} characters; the limit is {limit}."
            )
    for tag in item.tags:
        if not tag.key or len(tag.key) > 255 or len(tag.value) > 500:
            raise InvalidValueError(
                f"The dataset input tag {tag.key[:40]!r} is invalid: keys are 1-255 characters, values at most 500."
            )


def write_inputs(conn: sa.Connection, experiment_id: int, run_id: str, items: Sequence[DatasetInput]) -> None:
    """Insert datasets (deduplicated per experiment by name and digest), link them and tag the links."""
    for item in items:
        check_dataset_input(item)
    d = t.datasets.c
    for item in items:
        ds = item.dataset
        dataset_uuid = conn.execute(
            sa.select(d.dataset_uuid).where(d.experiment_id == experiment_id, d.name == ds.name, d.digest == ds.digest)
        ).scalar()
        if dataset_uuid is None:
            dataset_uuid = uuid.uuid4().hex
            conn.execute(t.datasets.insert().values(
                dataset_uuid=dataset_uuid, experiment_id=experiment_id, name=ds.name, digest=ds.digest,
                source_type=ds.source_type or "", source=ds.source or "", schema=ds.schema, profile=ds.profile,
            ))
        linked = conn.execute(
            sa.select(t.inputs.c.run_uuid).where(t.inputs.c.run_uuid == run_id, t.inputs.c.dataset_uuid == dataset_uuid)
        ).first()
        if linked is None:
            conn.execute(t.inputs.insert().values(run_uuid=run_id, dataset_uuid=dataset_uuid))
        for tag in item.tags:
            conn.execute(t.input_tags.delete().where(
                t.input_tags.c.run_uuid == run_id, t.input_tags.c.dataset_uuid == dataset_uuid,
                t.input_tags.c.key == tag.key))
            conn.execute(t.input_tags.insert().values(
                run_uuid=run_id, dataset_uuid=dataset_uuid, key=tag.key, value=tag.value))
