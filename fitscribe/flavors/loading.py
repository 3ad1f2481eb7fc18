"""Find a saved model from its URI, check it, and load it with the right flavor.

URIs: a local path or ``file://`` URI (read in place); ``runs:/<run_id>/<path>`` (the run's
artifacts); ``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>/<stage>``
and ``models:/<name>@<alias>`` (the model registry, optionally followed by a sub-path); any
artifact-store URI (``s3://...``).

What is checked before anything is deserialised: a model loaded through ``runs:/`` or ``models:/``
is compared with the digest of its whole folder (``MLmodel`` included) that ``log_model`` recorded
in the tracking store (run tag ``fitscribe.model.digest.<path>``), which the artifact store cannot
change; a mismatch is refused, naming the file. Then every file is checked against the sha256 in
``MLmodel``. A model whose format runs code when loaded (pickle) and that nothing vouches for (a
local folder, an MLflow model) loads with an :class:`UnverifiedModelWarning`, or is refused when
``FITSCRIBE_TRUSTED_ONLY=1``.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

from fitscribe.errors import ConfigError, FitscribeError, InvalidValueError, MissingDependencyError, NotFoundError, RunNotFound
from fitscribe.flavors.base import FLAVORS, Flavor
from fitscribe.flavors.environment import check_installed_versions
from fitscribe.flavors.model import Model, UnverifiedModelWarning, UntrustedModelError, check_folder_digest
from fitscribe.uri import check_relative_path, file_uri_to_path, is_local_path, scheme_key

__all__ = ["LoadedModel", "resolve_model_uri", "open_model", "load_native", "parse_runs_uri", "TRUSTED_ONLY_ENV"]

TRUSTED_ONLY_ENV = "FITSCRIBE_TRUSTED_ONLY"
"""Set to 1 to refuse pickle-based models that no tracking store vouches for."""

_RUNS_RE = re.compile(r"^runs:/+([0-9a-fA-F]{32})(?:/(.*))?$")
_MODEL_ID_RE = re.compile(r"^models:/+(m-[0-9a-fA-F]{32})/?$")  # an MLflow 3 logged model, by id
_MODELS_RE = re.compile(r"^models:/+([^/@]+)(?:@([^/]+)|/([^/]+))(?:/(.*))?$")
# The order in which MLflow-saved models (no fitscribe block) are matched to our flavors.
_FOREIGN_ORDER = ("xgboost", "onnx", "pytorch", "sklearn", "pyfunc")


def parse_runs_uri(uri: str) -> tuple[str, str] | None:
    """Split ``runs:/<run_id>/<path>`` into (run id, path without slashes at its ends); None for
    any other URI."""
    match = _RUNS_RE.match(uri or "")
    return None if match is None else (match.group(1), (match.group(2) or "").strip("/"))


@dataclass(frozen=True)
class LoadedModel:
    """A model folder on local disk with its checked descriptor and the flavor that loads it."""

    folder: str
    descriptor: Model
    flavor: Flavor


def _client() -> Any:
    from fitscribe import fluent

    return fluent.get_client()


def _registry_version(client: Any, name: str, alias: str | None, ref: str | None) -> Any:
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
    return version


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


@dataclass(frozen=True)
class _Located:
    """A model folder on local disk, and the run and artifact path it was downloaded from, if any."""

    folder: str
    run_id: str | None = None
    path: str | None = None


def resolve_model_uri(model_uri: str, dst_path: str | None = None, _depth: int = 0) -> str:
    """Return a local folder holding the model at ``model_uri``, downloading it if needed.

    Raises:
        NotFoundError: The run, registered model, version, alias or path does not exist.
        InvalidValueError: The URI is malformed.
    """
    return _locate(model_uri, dst_path, _depth).folder


def _locate(model_uri: str, dst_path: str | None = None, _depth: int = 0) -> _Located:
    model_uri = os.fspath(model_uri)
    if _depth > 4:
        raise InvalidValueError(f"The model URI {model_uri!r} resolves in a loop of registry sources.")
    runs = _RUNS_RE.match(model_uri)
    if runs:
        run_id, path = runs.group(1).lower(), (runs.group(2) or "").strip("/")
        try:
            return _Located(_download(_client(), run_id, path, dst_path), run_id, path)
        except RunNotFound:
            raise
        except NotFoundError:
            found = _run_logged_model(run_id, path)  # MLflow 3 logs models beside the run, not into it
            if found is None:
                raise
            return _locate(found, dst_path, _depth + 1)
    if model_uri.startswith("runs:"):
        raise InvalidValueError(
            f"{model_uri!r} is not a valid runs URI; write runs:/<32-hex run id>/<path>, e.g. runs:/{'0' * 32}/model."
        )
    logged = _MODEL_ID_RE.match(model_uri)
    if logged:
        return _locate(_logged_model_artifacts(logged.group(1)), dst_path, _depth + 1)
    models = _MODELS_RE.match(model_uri)
    if models:
        return _locate_registered(models.groups(), dst_path, _depth)
    if model_uri.startswith("models:"):
        raise InvalidValueError(
            f"{model_uri!r} is not a valid models URI; write models:/<name>/<version>, models:/<name>/latest "
            "or models:/<name>@<alias>."
        )
    if is_local_path(model_uri):
        path = os.path.abspath(file_uri_to_path(model_uri))
        if not os.path.exists(path):
            raise NotFoundError(f"No model at {path!r}: the path does not exist.")
        return _Located(path)
    from fitscribe.backends import get_artifact_store

    parent, _, leaf = model_uri.rstrip("/").rpartition("/")
    store = get_artifact_store(parent)
    target = dst_path or tempfile.mkdtemp(prefix="fitscribe-model-")
    return _Located(str(store.get(leaf, target)))


def _locate_registered(groups: tuple[Any, ...], dst_path: str | None, depth: int) -> _Located:
    """Resolve a registry URI through the version's source, keeping the run it came from."""
    name, alias, ref, sub = groups
    client = _client()
    version = _registry_version(client, name, alias, ref)
    source = str(version.source)
    if sub:
        source = source.rstrip("/") + "/" + check_relative_path(sub, "model path")
    located = _locate(source, dst_path, depth + 1)
    run_id = getattr(version, "run_id", None)
    if located.run_id is None and run_id:  # a source given as the run's artifact URI
        try:
            root = str(client.get_run(run_id).info.artifact_uri).rstrip("/")
        except NotFoundError:
            return located
        if source.startswith(root + "/"):
            return _Located(located.folder, str(run_id), source[len(root) + 1 :].strip("/"))
    return located


def _logged_model_artifacts(model_id: str) -> str:
    """Return the artifact URI of an MLflow 3 logged model (``models:/m-<id>``).

    Asked of the store when it knows logged models (``get_logged_model``), of a tracking server
    (MLflow's ``logged-models/<id>`` endpoint), or found in the layout MLflow's file store writes
    under a local tracking folder (``<experiment>/models/<id>/meta.yaml``).

    Raises:
        NotFoundError: No logged model has this id.
    """
    client = _client()
    found = _file_store_logged_model(str(client.tracking_uri), model_id)  # before opening a store there
    if isinstance(found, str):
        return found
    if found is not False:  # an MLflow file store opens no store of ours
        return client.store.get_logged_model(model_id).artifact_location  # a database or a tracking server
    raise NotFoundError(
        f"No logged model {model_id!r} at the tracking URI {client.tracking_uri!r}. MLflow 3 logged models "
        "are found through a tracking server (http://...) or in an MLflow file store folder (mlruns)."
    )


def _run_logged_model(run_id: str, path: str) -> str | None:
    """The artifact URI of the MLflow 3 logged model named ``path``'s first segment, output of the run.

    MLflow 3's ``log_model`` stores a model as a logged model (``source_run_id`` = the run), not
    in the run's artifacts; MLflow's client resolves ``runs:/<run>/<name>`` to it, and so does this.
    """
    first, _, rest = path.partition("/")
    if not first or "'" in first:
        return None
    client = _client()
    store, found = client.store, None
    if callable(getattr(store, "_call", None)) and callable(getattr(store, "_artifact_uri", None)):  # a server
        experiment = str(client.get_run(run_id).info.experiment_id)
        answer = store._call("POST", "logged-models/search", {
            "experiment_ids": [experiment], "filter": f"name = '{first}'", "max_results": 100,
        })
        for model in answer.get("models") or []:
            info = model.get("info") or {}
            if info.get("source_run_id") == run_id and info.get("artifact_uri"):
                found = str(store._artifact_uri(info["artifact_uri"]))
                break
    if found is None:
        return None
    return found.rstrip("/") + ("/" + rest if rest else "")


def _file_store_logged_model(tracking_uri: str, model_id: str) -> str | bool:
    """The artifact location in ``<root>/<experiment>/models/<id>/meta.yaml`` of a local MLflow file store.

    Returns False for an MLflow file store without that model, True when ``tracking_uri`` is not one.
    """
    import glob

    import yaml

    if not is_local_path(tracking_uri):
        return True
    root = file_uri_to_path(tracking_uri)
    for meta in sorted(glob.glob(os.path.join(glob.escape(root), "*", "models", model_id, "meta.yaml"))):
        with open(meta, encoding="utf-8") as fh:
            record = yaml.safe_load(fh) or {}
        location = record.get("artifact_location") if isinstance(record, dict) else None
        if isinstance(location, str) and location:
            return location
        return os.path.join(os.path.dirname(meta), "artifacts")
    return not glob.glob(os.path.join(glob.escape(root), "*", "meta.yaml"))  # experiments of a file store


def _recorded_seal(run_id: str, path: str) -> dict[str, Any] | None:
    """Return the seal recorded in the tracking store when the model at ``path`` was logged, or None."""
    import json

    from fitscribe.backends.model_history import HISTORY_TAG
    from fitscribe.flavors.saving import DIGEST_ENTRY_KEY, digest_tag

    tags = _client().get_run(run_id).data.tags
    raw = tags.get(digest_tag(path))
    candidates: list[Any] = []
    if raw:
        try:
            candidates.append(json.loads(raw))
        except ValueError:
            pass
    try:
        history = json.loads(tags.get(HISTORY_TAG) or "[]")
    except ValueError:
        history = []
    if isinstance(history, list):
        candidates += [e.get(DIGEST_ENTRY_KEY) for e in reversed(history)
                       if isinstance(e, dict) and str(e.get("artifact_path", "")).strip("/") == path]
    for seal in candidates:
        if isinstance(seal, dict) and isinstance(seal.get("digest"), str):
            return seal
    return None


def _check_trust(located: _Located, model_uri: str) -> bool:
    """Verify a run's model folder against its recorded seal; return whether it was verified.

    Raises:
        ModelIntegrityError: The folder differs from the one logged.
    """
    if located.run_id is None or not located.path:
        return False
    seal = _recorded_seal(located.run_id, located.path)
    if seal is None:
        return False
    check_folder_digest(located.folder, seal, model_uri)
    return True


def _warn_unverified(model_uri: str, folder: str, flavor: Flavor) -> None:
    """Warn (or refuse, under FITSCRIBE_TRUSTED_ONLY=1) before loading an unverifiable pickle-based model."""
    reason = (
        f"The {flavor.name} model at {model_uri!r} is stored in a format that runs code when loaded (pickle), "
        "and nothing recorded in a tracking store vouches for its files (a local folder, a model saved by "
        "another tool, or logged before fitscribe recorded model digests)"
    )
    if os.environ.get(TRUSTED_ONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        raise UntrustedModelError(
            f"{reason}; refusing to load it because {TRUSTED_ONLY_ENV} is set. Load it through the runs:/ or "
            f"models:/ URI it was logged under, or unset {TRUSTED_ONLY_ENV} if you trust its author."
        )
    warnings.warn(
        f"{reason}. Whoever could write it can run code in this process: load it only if you trust its source. "
        f"Set {TRUSTED_ONLY_ENV}=1 to refuse such models.",
        UnverifiedModelWarning,
        stacklevel=_user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """Return the ``stacklevel`` that points a warning at the first caller outside fitscribe."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _runs_code(flavor: Flavor, descriptor: Model) -> bool:
    """Whether loading this model with ``flavor`` unpickles or runs code (flavors say so; unknown ones do)."""
    check = getattr(flavor, "executes_code", None)
    return True if check is None else bool(check(descriptor))


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
        ModelIntegrityError: A file differs from the one saved, or (``runs:/``, ``models:/``) the
            folder differs from the digest recorded in the tracking store at log time.
        UntrustedModelError: The model runs code when loaded, nothing vouches for it, and
            ``FITSCRIBE_TRUSTED_ONLY=1`` is set.
        InvalidValueError: The model is of another flavor, or saved by a newer flavor format.

    Warns:
        UnverifiedModelWarning: The model runs code when loaded and nothing vouches for it.
    """
    located = _locate(model_uri, dst_path)
    folder = located.folder
    verified = _check_trust(located, os.fspath(model_uri))  # before MLmodel is even parsed
    descriptor = Model.load(folder)
    if not verified:  # a verified folder is byte for byte the one logged, whose files matched MLmodel
        descriptor.verify(folder)
    chosen = _flavor_for(descriptor, folder, flavor)
    if not verified and _runs_code(chosen, descriptor):
        _warn_unverified(os.fspath(model_uri), folder, chosen)
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
