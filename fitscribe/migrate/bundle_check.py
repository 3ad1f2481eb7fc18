"""Checking a bundle received from elsewhere (the server's import endpoint) before anything is written.

A bundle written by ``fitscribe export`` or ``fitscribe push`` passes; anything else (not a tar,
links or special files, a missing manifest, malformed JSON lines, values of the wrong type, keys
or values MLflow's limits refuse, series whose columns differ in length, artifacts of runs or
logged models the bundle does not hold) raises :class:`~fitscribe.errors.InvalidValueError` naming what is wrong, so
the server answers 400 and writes nothing.
"""

from __future__ import annotations

import os
import tarfile
from typing import Any

from fitscribe import validation as v
from fitscribe.entities import RunStatus
from fitscribe.errors import InvalidValueError

from .bundle import BundleSource
from .registry import DELETED_STAGE
from .source import SourceExperiment, SourceLoggedModel, SourceModel, SourceRun

__all__ = ["open_checked_bundle", "check_tar"]

_INT64 = 2**63
_STAGES = frozenset({"active", "deleted"})
_RUN_STATUSES = frozenset(status.value for status in RunStatus)
_VERSION_STAGES = frozenset({"None", "Staging", "Production", "Archived", DELETED_STAGE})
_RESERVED = ".fitscribe"


def check_tar(path: str) -> None:
    """Refuse a file that is not an uncompressed tar of plain files and folders with relative paths.

    Raises:
        InvalidValueError: Not a tar, a compressed one, or a member that is a link, a device, an
            absolute path or goes up with ``..``.
    """
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                name = member.name
                parts = name.replace("\\", "/").split("/")
                if not (member.isfile() or member.isdir()):
                    raise InvalidValueError(f"The bundle holds {name!r}, which is not a plain file or folder.")
                if name.startswith(("/", "\\")) or ".." in parts or "\x00" in name:
                    raise InvalidValueError(f"The bundle holds the path {name!r}; paths must stay inside the bundle.")
                if any(p.lower() == _RESERVED for p in parts):
                    raise InvalidValueError(f"The bundle holds {name!r}: '.fitscribe' folders are reserved.")
    except (tarfile.TarError, EOFError, UnicodeError) as exc:
        raise InvalidValueError(f"The request body is not an uncompressed tar bundle ({exc}); send the .tar "
                                "that `fitscribe export -o x.tar` writes.") from None


def open_checked_bundle(path: str) -> BundleSource:
    """Open a received ``.tar`` bundle and check every entity in it; the caller closes it.

    Raises:
        InvalidValueError: The bundle is malformed (the message says where).
    """
    check_tar(path)
    source: BundleSource | None = None
    try:
        source = BundleSource(path)
        _check(source)
    except InvalidValueError:
        if source is not None:
            source.close()
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, UnicodeError, OSError) as exc:
        if source is not None:
            source.close()
        raise InvalidValueError(f"The bundle is malformed ({type(exc).__name__}: {str(exc)[:200]}).") from None
    return source


def _int(value: Any, what: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise InvalidValueError(f"The bundle's {what} {value!r} is not a 64-bit integer.")


def _str(value: Any, what: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidValueError(f"The bundle's {what} {value!r} is not a string.")
    v.check_text(value, what, nul=True)


def _pairs(values: Any, what: str, check_value: Any) -> None:
    if not isinstance(values, dict):
        raise InvalidValueError(f"The bundle's {what} must be an object of key -> value.")
    for key, value in values.items():
        v.check_key(key, f"{what} key")
        _str(value, f"{what} value")
        check_value(key, value)


def _check(source: BundleSource) -> None:
    experiment_ids = {_check_experiment(e) for e in source.experiments()}
    run_ids = {_check_run(r, experiment_ids) for r in source.runs()}
    counts = source.metric_counts()
    for (run_id, key), points in counts.items():
        if run_id not in run_ids:
            raise InvalidValueError(f"The bundle has metric points of run {run_id!r}, which it does not hold.")
        v.check_key(key, "metric key")
        _int(points, "point count")
    for run_id, key, values, timestamps, steps in source.metric_series(list(counts)):
        if not len(values) == len(timestamps) == len(steps) == counts[(run_id, key)]:
            raise InvalidValueError(f"The series {key!r} of run {run_id!r} has columns of different lengths.")
        for value in values:
            if type(value) is not float:
                raise InvalidValueError(f"The series {key!r} of run {run_id!r} holds {value!r}, not a number.")
        for number in (*timestamps, *steps):
            _int(number, f"timestamp or step of {key!r}")
    for model in source.models():
        _check_model(model)
    model_ids = {_check_logged_model(m, experiment_ids) for m in source.logged_models()}
    for folder_name, held, what in (("artifacts", run_ids, "run"), ("logged_models", model_ids, "logged model")):
        folder = os.path.join(source.root, folder_name)
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name not in held:
                raise InvalidValueError(f"The bundle has files of {what} {name!r}, which it does not hold.")


def _check_experiment(exp: SourceExperiment) -> str:
    _str(exp.experiment_id, "experiment id")
    v.check_experiment_name(exp.name)
    _str(exp.artifact_location, "artifact location")
    if exp.lifecycle_stage not in _STAGES:
        raise InvalidValueError(f"The bundle's experiment lifecycle stage {exp.lifecycle_stage!r} is not one of "
                                f"{sorted(_STAGES)}.")
    _int(exp.creation_time, "experiment creation time", optional=True)
    _int(exp.last_update_time, "experiment update time", optional=True)
    _pairs(exp.tags, "experiment tag", lambda k, val: v.check_tag_value(k, val, experiment=True))
    return exp.experiment_id


def _check_run(run: SourceRun, experiment_ids: set[str]) -> str:
    v.check_run_id(run.run_id)
    if run.experiment_id not in experiment_ids:
        raise InvalidValueError(f"The bundle's run {run.run_id!r} names experiment {run.experiment_id!r}, "
                                "which the bundle does not hold.")
    v.check_run_name(run.name)
    _str(run.user_id, "run user")
    if run.status not in _RUN_STATUSES:
        raise InvalidValueError(f"The bundle's run status {run.status!r} is not one of {sorted(_RUN_STATUSES)}.")
    _int(run.start_time, "run start time")
    _int(run.end_time, "run end time", optional=True)
    _int(run.deleted_time, "run deletion time", optional=True)
    if run.lifecycle_stage not in _STAGES:
        raise InvalidValueError(f"The bundle's run lifecycle stage {run.lifecycle_stage!r} is not one of "
                                f"{sorted(_STAGES)}.")
    _str(run.artifact_uri, "run artifact URI")
    _pairs(run.params, "param", v.check_param_value)
    _pairs(run.tags, "tag", v.check_tag_value)
    for d in run.inputs:
        for what in ("dataset_uuid", "name", "digest", "source_type", "source"):
            _str(getattr(d, what), f"dataset {what}")
        _str(d.schema, "dataset schema", optional=True)
        _str(d.profile, "dataset profile", optional=True)
        _pairs(d.input_tags, "input tag", lambda k, val: None)
    return run.run_id


def _check_logged_model(model: SourceLoggedModel, experiment_ids: set[str]) -> str:
    from fitscribe.entities.logged_model import check_model_id, parse_status

    check_model_id(model.model_id)
    if model.experiment_id not in experiment_ids:
        raise InvalidValueError(f"The bundle's logged model {model.model_id!r} names experiment "
                                f"{model.experiment_id!r}, which the bundle does not hold.")
    for what in ("name", "artifact_location", "status"):
        _str(getattr(model, what), f"logged model {what}")
    for what in ("model_type", "source_run_id", "status_message"):
        _str(getattr(model, what), f"logged model {what}", optional=True)
    if model.source_run_id:
        v.check_run_id(model.source_run_id)
    parse_status(model.status)
    if model.lifecycle_stage not in _STAGES:
        raise InvalidValueError(f"The bundle's logged model lifecycle stage {model.lifecycle_stage!r} is not one "
                                f"of {sorted(_STAGES)}.")
    _int(model.creation_timestamp, "logged model creation time")
    _int(model.last_updated_timestamp, "logged model update time")
    _pairs(model.tags, "logged model tag", lambda k, val: None)
    _pairs(model.params, "logged model param", lambda k, val: None)
    return model.model_id


def _check_model(model: SourceModel) -> None:
    v.check_model_name(model.name)
    _int(model.creation_time, "model creation time", optional=True)
    _int(model.last_updated_time, "model update time", optional=True)
    _str(model.description, "model description", optional=True)
    _pairs(model.tags, "model tag", lambda k, val: None)
    numbers = set()
    for version in model.versions:
        _int(version.version, "model version")
        if version.version < 1:
            raise InvalidValueError(f"The bundle's model version {version.version} of {model.name!r} is not >= 1.")
        numbers.add(version.version)
        if version.current_stage not in _VERSION_STAGES:
            raise InvalidValueError(f"The bundle's model stage {version.current_stage!r} is not one of "
                                    f"{sorted(_VERSION_STAGES)}.")
        _int(version.creation_time, "version creation time", optional=True)
        _int(version.last_updated_time, "version update time", optional=True)
        for what in ("source", "status"):
            _str(getattr(version, what), f"model version {what}")
        for what in ("description", "user_id", "run_id", "run_link"):
            _str(getattr(version, what), f"model version {what}", optional=True)
        _pairs(version.tags, "model version tag", lambda k, val: None)
    for alias, number in model.aliases.items():
        v.check_alias(alias)
        if number not in numbers:
            raise InvalidValueError(f"The bundle's alias {alias!r} of {model.name!r} names version {number}, "
                                    "which the bundle does not hold.")
