"""Find a saved model from its URI, check it, and load it with the right flavor.

URIs: a local path or ``file://`` URI (read in place); ``runs:/<run_id>/<path>`` (the run's
artifacts); ``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>/<stage>``
and ``models:/<name>@<alias>`` (the model registry, optionally followed by a sub-path); any
artifact-store URI (``s3://...``). Every fitscribe model's files are checked against the sha256
recorded at save time before anything is unpickled.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from typing import Any

from fitscribe.errors import ConfigError, FitscribeError, InvalidValueError, MissingDependencyError, NotFoundError, RunNotFound
from fitscribe.flavors.base import FLAVORS, Flavor
from fitscribe.flavors.environment import check_installed_versions
from fitscribe.flavors.model import Model
from fitscribe.uri import check_relative_path, file_uri_to_path, is_local_path, scheme_key

__all__ = ["LoadedModel", "resolve_model_uri", "open_model", "load_native"]

_RUNS_RE = re.compile(r"^runs:/+([0-9a-fA-F]{32})(?:/(.*))?$")
_MODELS_RE = re.compile(r"^models:/+([^/@]+)(?:@([^/]+)|/([^/]+))(?:/(.*))?$")
# The order in which MLflow-saved models (no fitscribe block) are matched to our flavors.
_FOREIGN_ORDER = ("xgboost", "onnx", "pytorch", "sklearn", "pyfunc")


@dataclass(frozen=True)
class LoadedModel:
    """A model folder on local disk with its checked descriptor and the flavor that loads it."""

    folder: str
    descriptor: Model
    flavor: Flavor


def _client() -> Any:
    from fitscribe import fluent

    return fluent.get_client()


def _registry_source(client: Any, name: str, alias: str | None, ref: str | None) -> str:
    if alias is not None:
        version = client.get_model_version_by_alias(name, alias)
    elif ref is not None and ref.isdigit():
        version = client.get_model_version(name, int(ref))
    else:
        stages = None if ref is None or ref.lower() == "latest" else [ref]
        versions = client.get_latest_versions(name, stages=stages)
        if not versions:
            where = f" in stage {ref!r}" if stages else ""
            raise NotFoundError(f"The registered model {name!r} has no versions{where}.")
        version = max(versions, key=lambda v: int(v.version))
    return str(version.source)


def _download(client: Any, run_id: str, path: str, dst: str | None) -> str:
    path = check_relative_path(path or "", "model path")
    target = dst or tempfile.mkdtemp(prefix="fitscribe-model-")
    try:
        return str(client.download_artifacts(run_id, path, target))
    except RunNotFound:
        raise
    except NotFoundError as exc:
        raise NotFoundError(
            f"The run {run_id} has no model at {path!r} ({exc}). "
            f"List the run's artifacts with: fitscribe artifacts list --run-id {run_id}"
        ) from exc


def resolve_model_uri(model_uri: str, dst_path: str | None = None, _depth: int = 0) -> str:
    """Return a local folder holding the model at ``model_uri``, downloading it if needed.

    Raises:
        NotFoundError: The run, registered model, version, alias or path does not exist.
        InvalidValueError: The URI is malformed.
    """
    model_uri = os.fspath(model_uri)
    if _depth > 4:
        raise InvalidValueError(f"The model URI {model_uri!r} resolves in a loop of registry sources.")
    runs = _RUNS_RE.match(model_uri)
    if runs:
        return _download(_client(), runs.group(1).lower(), runs.group(2) or "", dst_path)
    if model_uri.startswith("runs:"):
        raise InvalidValueError(
            f"{model_uri!r} is not a valid runs URI; write runs:/<32-hex run id>/<path>, e.g. runs:/{'0' * 32}/model."
        )
    models = _MODELS_RE.match(model_uri)
    if models:
        name, alias, ref, sub = models.groups()
        source = _registry_source(_client(), name, alias, ref)
        if sub:
            source = source.rstrip("/") + "/" + check_relative_path(sub, "model path")
        return resolve_model_uri(source, dst_path, _depth + 1)
    if model_uri.startswith("models:"):
        raise InvalidValueError(
            f"{model_uri!r} is not a valid models URI; write models:/<name>/<version>, models:/<name>/latest "
            "or models:/<name>@<alias>."
        )
    if is_local_path(model_uri):
        path = os.path.abspath(file_uri_to_path(model_uri))
        if not os.path.exists(path):
            raise NotFoundError(f"No model at {path!r}: the path does not exist.")
        return path
    from fitscribe.backends import get_artifact_store

    parent, _, leaf = model_uri.rstrip("/").rpartition("/")
    store = get_artifact_store(parent)
    target = dst_path or tempfile.mkdtemp(prefix="fitscribe-model-")
    return str(store.get(leaf, target))


def _flavor_for(descriptor: Model, folder: str, wanted: str | None) -> Flavor:
    available = set(descriptor.flavors)
    if wanted is not None:
        if descriptor.flavor_name == wanted or wanted in available:
            return FLAVORS.get(wanted)
        suggested = descriptor.flavor_name or next((n for n in _FOREIGN_ORDER if n in available), "pyfunc")
        saved = descriptor.flavor_name or ", ".join(sorted(available - {"python_function"}))
        alternative = "" if suggested == "pyfunc" else ", or fitscribe.flavors.pyfunc.load_model for predict()"
        raise InvalidValueError(
            f"The model at {folder!r} was saved with the {saved!r} flavor, not {wanted!r}. Load it with "
            f"fitscribe.flavors.{suggested}.load_model{alternative}."
        )
    if descriptor.flavor_name:
        return FLAVORS.get(descriptor.flavor_name)
    for name in _FOREIGN_ORDER:
        if name in available or name == "pyfunc" and "python_function" in available:
            return FLAVORS.get(name)
    raise ConfigError(
        f"The model at {folder!r} has flavors {sorted(available)}, none of which fitscribe can load. "
        f"Known flavors: {', '.join(FLAVORS.keys())}."
    )


def open_model(model_uri: str, flavor: str | None = None, dst_path: str | None = None) -> LoadedModel:
    """Resolve, read and verify a model, and pick the flavor that loads it.

    Args:
        model_uri: Where the model is (see the module docstring).
        flavor: Require this flavor (e.g. ``"sklearn"``); None picks the saved one.
        dst_path: Download into this local folder instead of a temporary one.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: A file differs from the one saved.
        InvalidValueError: The model is of another flavor, or saved by a newer flavor format.
    """
    folder = resolve_model_uri(model_uri, dst_path)
    descriptor = Model.load(folder)
    descriptor.verify(folder)
    chosen = _flavor_for(descriptor, folder, flavor)
    saved_format = descriptor.fitscribe.get("flavor_version")
    if descriptor.flavor_name == chosen.name and isinstance(saved_format, int) and saved_format > chosen.format_version:
        raise InvalidValueError(
            f"The model at {folder!r} was written by a newer fitscribe (flavor {chosen.name!r} format "
            f"{saved_format}, this version reads up to {chosen.format_version}). Upgrade: pip install -U fitscribe"
        )
    check_installed_versions(folder, chosen.frameworks)
    code = os.path.join(folder, "code")
    if os.path.isdir(code):
        import sys

        if code not in sys.path:
            sys.path.insert(0, code)
    return LoadedModel(folder, descriptor, chosen)


def load_native(model_uri: str, flavor: str, dst_path: str | None = None) -> Any:
    """Load the native model object saved at ``model_uri`` with the named flavor."""
    opened = open_model(model_uri, flavor, dst_path)
    try:
        return opened.flavor.load(opened.folder, opened.descriptor)
    except FitscribeError:
        raise
    except ImportError as exc:
        raise MissingDependencyError(
            f"Loading the {flavor} model at {opened.folder!r} needs a module that is not installed: {exc}. "
            "Install the packages listed in its requirements.txt.", package=getattr(exc, "name", None),
        ) from exc
    except (OSError, ValueError, EOFError, AttributeError, KeyError, pickle.UnpicklingError) as exc:
        raise InvalidValueError(
            f"Could not load the {flavor} model at {opened.folder!r}: {type(exc).__name__}: {exc}"
        ) from exc
