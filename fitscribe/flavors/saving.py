"""Save a model into a folder, or log it into a run: the steps every flavor shares.

``save_model`` lets the flavor write its files, then adds the signature, the input example, the
environment files and the ``MLmodel`` descriptor with a sha256 of every file. ``log_model`` saves
into a temporary folder, uploads it into the run's artifacts, records it in the run's
``mlflow.log-model.history`` tag and, if asked, registers a new model version.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Sequence

from fitscribe.backends import get_artifact_store
from fitscribe.errors import AlreadyExistsError, InvalidValueError
from fitscribe.flavors import environment, examples
from fitscribe.flavors.base import FLAVORS, Flavor, ModelInfo
from fitscribe.flavors.model import Model, folder_digest, python_version
from fitscribe.flavors.signature import ModelSignature, infer_signature
from fitscribe.uri import check_relative_path

__all__ = ["save_model", "log_model", "digest_tag", "FLAVOR_FORMAT_KEY", "DIGEST_TAG_PREFIX", "DIGEST_ENTRY_KEY"]

FLAVOR_FORMAT_KEY = "flavor_version"
DIGEST_TAG_PREFIX = "fitscribe.model.digest."
"""Run tag ``fitscribe.model.digest.<artifact path>``: the logged model folder's seal (JSON of
:func:`fitscribe.flavors.model.folder_digest`), checked by ``load_model`` before anything is read.
Its presence also marks the folder as sealed: complete, and never to be overwritten."""
DIGEST_ENTRY_KEY = "fitscribe_digest"
"""The same seal inside the model's ``mlflow.log-model.history`` entry (a key MLflow ignores)."""
CODE_DIR = "code"


def _prepare_folder(path: str) -> str:
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise AlreadyExistsError(
            f"Cannot save a model into {path!r}: it already exists and is not an empty folder. "
            "Choose a new path or remove the old model first."
        )
    os.makedirs(path, exist_ok=True)
    return path


def _copy_code_paths(folder: str, code_paths: Sequence[str] | None) -> str | None:
    if not code_paths:
        return None
    target = os.path.join(folder, CODE_DIR)
    os.makedirs(target, exist_ok=True)
    for item in code_paths:
        item = os.fspath(item)
        if not os.path.exists(item):
            raise InvalidValueError(f"The code path {item!r} does not exist; give files or folders of Python code.")
        dest = os.path.join(target, os.path.basename(os.path.normpath(item)))
        if os.path.isdir(item):
            shutil.copytree(item, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, dest)
    return CODE_DIR


def _signature(
    flavor: Flavor, model: Any, signature: ModelSignature | bool | None, example: Any
) -> ModelSignature | None:
    if signature is False:
        return None
    if isinstance(signature, ModelSignature):
        return signature
    if signature not in (None, True):
        raise InvalidValueError(
            f"signature must be a ModelSignature (see fitscribe.flavors.infer_signature), None or False; got {signature!r}."
        )
    if example is None:
        return None
    output = None
    predict = getattr(flavor, "example_output", None)
    if predict is not None:
        output = predict(model, example)
    return infer_signature(example, output)


def save_model(
    model: Any,
    path: str,
    *,
    flavor: str | Flavor | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    **options: Any,
) -> Model:
    """Save ``model`` into a new folder at ``path`` with its descriptor and environment.

    Args:
        model: The model object.
        path: A folder that does not exist yet (or is empty).
        flavor: Flavor name or object; by default the first flavor that handles ``model``.
        signature: A ModelSignature; None infers one from ``input_example`` when given; False
            stores none.
        input_example: A few rows of input (DataFrame, ndarray, dict, list), saved as JSON.
        pip_requirements: Replace the inferred requirements with these lines.
        extra_pip_requirements: Add these lines to the inferred requirements.
        metadata: A free-form dict stored in ``MLmodel``.
        code_paths: Local files or folders of code the model needs, copied into ``code/`` and
            put on ``sys.path`` when the model is loaded.
        run_id: Recorded in ``MLmodel`` (set by ``log_model``).
        artifact_path: Recorded in ``MLmodel`` (set by ``log_model``).
        **options: Flavor-specific options (e.g. ``serialization_format`` for sklearn).

    Returns:
        The descriptor written to ``<path>/MLmodel``.

    Raises:
        AlreadyExistsError: ``path`` exists and is not an empty folder.
        ConfigError: ``flavor`` names no registered flavor, or none handles the model.
    """
    chosen = resolve_flavor(model, flavor)
    environment.INSPECTOR.refresh()  # flavors look up distributions while saving
    folder = _prepare_folder(path)
    try:
        code_dir = _copy_code_paths(folder, code_paths)
        if code_dir:
            options = {**options, "code": code_dir}
        saved = chosen.save(model, folder, {**options, "input_example": input_example})
        descriptor = Model(flavors=saved.sections, run_id=run_id, artifact_path=artifact_path, metadata=metadata)
        if code_dir:
            for section in saved.sections.values():
                section.setdefault("code", code_dir)
        sig = _signature(chosen, model, signature, input_example)
        if sig is not None:
            descriptor.signature = sig.to_dict()
        if input_example is not None:
            descriptor.saved_input_example_info = examples.save_example(folder, input_example)
        requirements = environment.requirements_for(
            saved.modules, saved.distributions, pip_requirements, extra_pip_requirements
        )
        environment.write_environment(folder, requirements)
        from fitscribe import __version__

        descriptor.fitscribe = {
            "flavor": chosen.name,
            FLAVOR_FORMAT_KEY: chosen.format_version,
            "version": __version__,
            "python_version": python_version(),
        }
        descriptor.seal(folder, saved.hashes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return descriptor


def resolve_flavor(model: Any, flavor: str | Flavor | None) -> Flavor:
    """Return the flavor object named by ``flavor``, or the first one that handles ``model``.

    Raises:
        ConfigError: The name is unknown, or no flavor handles the model.
    """
    from fitscribe.errors import ConfigError

    if flavor is not None and not isinstance(flavor, str):
        return flavor
    if isinstance(flavor, str):
        return FLAVORS.get(flavor)
    from fitscribe.flavors.base import AUTO_DETECT_ORDER

    names = [*AUTO_DETECT_ORDER, *(k for k in FLAVORS.keys() if k not in AUTO_DETECT_ORDER)]
    for name in names:
        candidate = FLAVORS.get(name)
        if candidate.handles(model):
            return candidate
    raise ConfigError(
        f"No model flavor knows how to save a {type(model).__module__}.{type(model).__qualname__}. "
        f"Known flavors: {', '.join(names)}; wrap the model in a fitscribe.flavors.pyfunc.PythonModel "
        "or pass flavor=..."
    )


def digest_tag(name: str) -> str:
    """Return the run tag holding the seal of the model logged as ``name``.

    ``fitscribe.model.digest.<name>``; a name that is not a valid tag key (characters, length) is
    replaced by its sha256.

    >>> digest_tag("model")
    'fitscribe.model.digest.model'
    >>> digest_tag("model+v2")[:31]
    'fitscribe.model.digest.sha256-'
    """
    import hashlib
    import re

    key = DIGEST_TAG_PREFIX + name
    if re.fullmatch(r"[\w/.\- :]+", key) and len(key) <= 250:
        return key
    return DIGEST_TAG_PREFIX + "sha256-" + hashlib.sha256(name.encode("utf-8")).hexdigest()


def _history_entry(descriptor: Model, seal: dict[str, str]) -> dict[str, Any]:
    return {
        "run_id": descriptor.run_id,
        "artifact_path": descriptor.artifact_path,
        "utc_time_created": descriptor.utc_time_created,
        "model_uuid": descriptor.model_uuid,
        "flavors": descriptor.flavors,
        DIGEST_ENTRY_KEY: seal,
    }


def log_model(
    model: Any,
    name: str = "model",
    *,
    flavor: str | Flavor | None = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
    **save_options: Any,
) -> ModelInfo:
    """Save ``model`` into the artifacts of a run (the active one, else a new one) and return its info.

    Args:
        model: The model object.
        name: The model's folder inside the run's artifacts (``runs:/<run_id>/<name>``).
        flavor: Flavor name or object; by default the first flavor that handles ``model``.
        registered_model_name: Also register the model under this name as a new version,
            creating the registered model if needed.
        run_id: Log into this run instead of the active one.
        **save_options: Everything :func:`save_model` accepts (signature, input_example,
            pip_requirements, extra_pip_requirements, metadata, code_paths, flavor options).

    Returns:
        A ModelInfo whose ``model_uri`` loads the model back.
    """
    from fitscribe import fluent

    name = check_relative_path(name, "model name")
    if not name:
        raise InvalidValueError("The model name must be a non-empty relative path such as 'model'.")
    started = None
    if run_id is None:
        active = fluent.active_run()
        if active is None:
            started = fluent.start_run()
            active = started
        run_id = active.info.run_id
    client = fluent.get_client()
    try:
        return _log_into(client, run_id, model, name, flavor, registered_model_name, save_options)
    finally:
        if started is not None:
            fluent.end_run()


def _log_into(
    client: Any, run_id: str, model: Any, name: str, flavor: Any, registered: str | None, options: dict[str, Any]
) -> ModelInfo:
    store = get_artifact_store(client.get_artifact_uri(run_id))
    scratch = store.scratch_folder()  # a local store: write in place, then rename
    tmp = scratch if scratch is not None else tempfile.mkdtemp(prefix="fitscribe-model-")
    local = os.path.join(tmp, "model")  # not tmp itself: mkdtemp's folders are private (0700)
    try:
        descriptor = save_model(model, local, flavor=flavor, run_id=run_id, artifact_path=name, **options)
        seal = folder_digest(local, descriptor.fitscribe.get("files"))  # model files were hashed while written
        adopted = scratch is not None and store.adopt_folder(local, name)
        if not adopted:
            client.log_artifacts(run_id, local, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if adopted:
        os.rmdir(tmp)  # empty once the model folder was moved out
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    client.store.record_logged_model(run_id, _history_entry(descriptor, seal))
    client.set_tag(run_id, digest_tag(name), json.dumps(seal, sort_keys=True))
    version = None
    if registered:
        version = _register(client, registered, run_id, name)
    return ModelInfo(
        artifact_path=name,
        flavors=descriptor.flavors,
        model_uri=f"runs:/{run_id}/{name}",
        model_uuid=descriptor.model_uuid,
        run_id=run_id,
        utc_time_created=descriptor.utc_time_created,
        signature=ModelSignature.from_dict(descriptor.signature),
        saved_input_example_info=descriptor.saved_input_example_info,
        metadata=descriptor.metadata,
        registered_model_version=version,
        descriptor=descriptor,
    )


def _register(client: Any, registered: str, run_id: str, name: str) -> int:
    from fitscribe.errors import AlreadyExistsError as Exists

    try:
        client.create_registered_model(registered)
    except Exists:
        pass
    version = client.create_model_version(registered, f"runs:/{run_id}/{name}", run_id=run_id)
    return int(version.version)
