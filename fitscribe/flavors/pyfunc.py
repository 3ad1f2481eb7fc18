"""One ``predict(data)`` for every model, and custom Python models.

``load_model(uri)`` loads a model of any flavor (sklearn, xgboost, pytorch, onnx, a custom
:class:`PythonModel`) as a :class:`PyFuncModel` whose ``predict`` accepts pandas DataFrames, numpy
arrays, dicts and lists and enforces the model's signature first.

A custom model subclasses :class:`PythonModel` (``load_context`` once, ``predict`` per call) and is
saved with ``artifacts`` (name -> local file or folder, copied into the model and handed back as
local paths in ``context.artifacts``) and ``code_paths``.

``predict`` may take the context or not, as in MLflow: ``predict(self, context, model_input,
params=None)`` or ``predict(self, model_input, params=None)``.

The folder is laid out as MLflow's: a ``python_function`` block with ``loader_module:
mlflow.pyfunc.model``, ``python_model: python_model.pkl``, ``cloudpickle_version``, ``artifacts`` and
``env``, so ``mlflow.pyfunc.load_model`` predicts with it (where fitscribe is installed, since the
pickle refers to :class:`PythonModel`). Models saved by older fitscribe versions (a ``pyfunc``
block) still load. This module also loads MLflow's custom models: a pickled subclass of
``mlflow.pyfunc.PythonModel`` (MLflow's base class is read as ours, so MLflow need not be installed),
and models-from-code (see :mod:`fitscribe.flavors.code_model`).

Security: a custom model is stored with cloudpickle, so loading one runs code. Load only models
you or a trusted colleague saved; prefer the ONNX or XGBoost flavors for models from elsewhere.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from fitscribe.errors import InvalidValueError
from fitscribe.flavors.base import ModelInfo, SavedFlavor, class_modules
from fitscribe.flavors.environment import env_section
from fitscribe.flavors.model import Model
from fitscribe.flavors.signature import ModelSignature

__all__ = [
    "PythonModel", "PythonModelContext", "PyFuncModel", "save_model", "log_model", "load_model", "set_model", "FLAVOR",
]

PYTHON_MODEL_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
LOADER_MODULE = "mlflow.pyfunc.model"
"""``loader_module`` of MLflow's python_function block for a pickled PythonModel."""


@dataclass(frozen=True)
class _TypeHints:
    """What MLflow's pyfunc wrapper reads from ``predict_type_hints`` (none: the input is passed as is)."""

    input: Any = None
    output: Any = None


@dataclass(frozen=True)
class PythonModelContext:
    """What a :class:`PythonModel` gets in ``load_context``: local paths of its artifacts and its config."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


class PythonModel:
    """Base class of custom models: override ``predict`` (and ``load_context`` if needed).

    >>> class AddN(PythonModel):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def predict(self, context, model_input, params=None):
    ...         return model_input + self.n
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Prepare the model once after loading (read artifacts, build sessions). Optional."""

    def predict(self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Return predictions for ``model_input`` (already checked against the signature).

        ``context`` may be left out of an override: ``predict(self, model_input, params=None)``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement predict(context, model_input, params=None).")

    @property
    def predict_type_hints(self) -> Any:
        """No type-hint conversion (read by MLflow's pyfunc wrapper when MLflow loads this model)."""
        return _TypeHints()


class PyFuncModel:
    """A loaded model of any flavor with one ``predict`` that enforces the signature.

    Attributes:
        metadata: The model's ``MLmodel`` descriptor.
        flavor: Name of the flavor that loaded it.
    """

    def __init__(self, native: Any, predict_fn: Callable[[Any], Any], descriptor: Model, flavor: str, folder: str) -> None:
        self._native = native
        self._predict = predict_fn
        self.metadata = descriptor
        self.flavor = flavor
        self.model_path = folder
        self._signature = ModelSignature.from_dict(descriptor.signature)

    def __repr__(self) -> str:
        return f"<PyFuncModel flavor={self.flavor!r} path={self.model_path!r}>"

    @property
    def signature(self) -> ModelSignature | None:
        """The model's signature, or None."""
        return self._signature

    @property
    def input_example(self) -> Any:
        """The saved input example, or None."""
        from fitscribe.flavors.examples import load_example

        return load_example(self.model_path, self.metadata.saved_input_example_info)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Check ``data`` against the signature, convert it, and return the model's predictions.

        Raises:
            SchemaError: A required column is missing, or a value cannot be converted safely.
        """
        if self._signature is not None:
            data = self._signature.enforce(data)
        if params:
            return self._predict(data, params)  # type: ignore[call-arg]
        return self._predict(data)

    def get_raw_model(self) -> Any:
        """Return the underlying native model object (estimator, Booster, nn.Module...)."""
        return self._native

    def unwrap_python_model(self) -> PythonModel:
        """Return the user's PythonModel instance (custom models only).

        Raises:
            InvalidValueError: The model is not a custom PythonModel.
        """
        if not isinstance(self._native, PythonModel):
            raise InvalidValueError(
                f"This model was saved with the {self.flavor!r} flavor, not as a PythonModel; use get_raw_model()."
            )
        return self._native


def load_model(model_uri: str, dst_path: str | None = None) -> PyFuncModel:
    """Load a model of any flavor for generic inference.

    Args:
        model_uri: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, a local path...
        dst_path: Download into this folder instead of a temporary one.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: A model file changed since it was saved.
    """
    from fitscribe.flavors.loading import open_model

    opened = open_model(model_uri, None, dst_path)
    native = opened.flavor.load(opened.folder, opened.descriptor)
    predict_fn = opened.flavor.predictor(native, opened.folder, opened.descriptor)
    return PyFuncModel(native, predict_fn, opened.descriptor, opened.flavor.name, opened.folder)


class _PyfuncFlavor:
    """Custom :class:`PythonModel` subclasses, stored with cloudpickle."""

    name = "pyfunc"
    format_version = 1
    frameworks = ("cloudpickle",)

    def handles(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def executes_code(self, descriptor: Model) -> bool:
        """A custom model is a cloudpickle (or a script), so loading it always runs code."""
        return True

    def save(self, model: Any, folder: str, options: dict[str, Any]) -> SavedFlavor:
        import cloudpickle

        from fitscribe.flavors.environment import env_section
        from fitscribe.flavors.model import python_version

        if isinstance(model, (str, os.PathLike)):
            from fitscribe.flavors.code_model import save_code_model

            return save_code_model(os.fspath(model), folder, options)
        if not isinstance(model, PythonModel):
            raise InvalidValueError(
                "python_model must be an instance of fitscribe.flavors.pyfunc.PythonModel or the path of a "
                f"models-from-code script, got {type(model).__name__}."
            )
        artifacts = _copy_artifacts(folder, options.get("artifacts") or {})
        with open(os.path.join(folder, PYTHON_MODEL_FILE), "wb") as fh:
            cloudpickle.dump(model, fh)
        section: dict[str, Any] = {
            "loader_module": LOADER_MODULE,
            "python_model": PYTHON_MODEL_FILE,
            "cloudpickle_version": cloudpickle.__version__,
            "artifacts": artifacts,
            "python_version": python_version(),
            "env": env_section(),
            "streamable": False,
        }
        if options.get("model_config"):
            section["config"] = dict(options["model_config"])
        return SavedFlavor({"python_function": section}, class_modules(model), ["cloudpickle"])

    def load(self, folder: str, descriptor: Model) -> Any:
        section = _section(descriptor)
        if "model_code_path" in section:
            from fitscribe.flavors.code_model import load_code_model

            model = load_code_model(folder, descriptor, section)
        elif "python_model" in section:
            from fitscribe.flavors.code_model import load_pickled_model

            model = load_pickled_model(descriptor.model_file(folder, str(section["python_model"])), folder)
        else:
            loader = section.get("loader_module")
            raise InvalidValueError(
                f"The model at {folder!r} has a python_function block with loader_module {loader!r} and no "
                "python_model or model_code_path, so it is not a custom PythonModel fitscribe can load."
            )
        load_context = getattr(model, "load_context", None)
        if callable(load_context):
            load_context(_context(folder, section))
        return model

    def predictor(self, native: Any, folder: str, descriptor: Model) -> Callable[[Any], Any]:
        import inspect

        context = _context(folder, _section(descriptor))
        method = getattr(native, "predict", None)
        if method is None and callable(native):  # models-from-code may set a plain function
            method = native
        if method is None:
            raise InvalidValueError(f"The custom model at {folder!r} has no predict method.")
        parameters = inspect.signature(method).parameters
        takes_params = "params" in parameters
        # As MLflow: a context is expected when named so, or when two arguments besides params remain.
        with_context = "context" in parameters or len([p for p in parameters if p not in ("self", "params")]) == 2

        def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
            args = (context, data) if with_context else (data,)
            return method(*args, params=params) if takes_params and params else method(*args)

        return predict


def _section(descriptor: Model) -> dict[str, Any]:
    """The custom model's block: ``python_function`` (MLflow's layout), or ``pyfunc`` (older fitscribe)."""
    old = descriptor.flavors.get("pyfunc")
    if isinstance(old, dict) and "python_model" in old:
        return old
    return dict(descriptor.flavors.get("python_function") or {})


def _context(folder: str, section: dict[str, Any]) -> PythonModelContext:
    from fitscribe.flavors.model import ModelIntegrityError
    from fitscribe.uri import check_relative_path

    artifacts = {}
    for name, entry in (section.get("artifacts") or {}).items():
        if not isinstance(entry, dict) or "path" not in entry:
            continue
        try:
            rel = check_relative_path(str(entry["path"]), "artifact path")
        except InvalidValueError as exc:
            raise ModelIntegrityError(f"The MLmodel file in {folder!r} names an artifact outside the model: {exc}") from exc
        artifacts[str(name)] = os.path.join(folder, *rel.split("/"))
    config = section.get("config") or section.get("model_config") or {}
    return PythonModelContext(artifacts, dict(config) if isinstance(config, dict) else {})


def _copy_artifacts(folder: str, artifacts: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, source in artifacts.items():
        from fitscribe.flavors.loading import resolve_model_uri

        local = resolve_model_uri(str(source))
        rel = f"{ARTIFACTS_DIR}/{os.path.basename(os.path.normpath(local))}"
        target = os.path.join(folder, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            raise InvalidValueError(f"Two artifacts would be stored as {rel!r}; give files with different names.")
        if os.path.isdir(local):
            shutil.copytree(local, target)
        else:
            shutil.copy2(local, target)
        out[str(name)] = {"path": rel, "uri": str(source)}
    return out


FLAVOR = _PyfuncFlavor()


def save_model(
    path: str,
    python_model: PythonModel | str,
    artifacts: dict[str, str] | None = None,
    code_paths: Sequence[str] | None = None,
    model_config: dict[str, Any] | None = None,
    **options: Any,
) -> Model:
    """Save a custom :class:`PythonModel` with its artifacts and code into a new folder.

    Args:
        path: A folder that does not exist yet.
        python_model: The model instance (stored with cloudpickle), or the path of a
            models-from-code script that ends with ``set_model(model)`` (copied into the model; run
            when the model is loaded, as MLflow's ``python_model="file.py"``).
        artifacts: Name -> local path or artifact URI; copied into the model, given back as local
            paths in ``context.artifacts``.
        code_paths: Local modules the model imports, copied into ``code/``.
        model_config: A dict handed to the model as ``context.model_config``.
        **options: signature, input_example, pip_requirements, extra_pip_requirements, metadata.
    """
    from fitscribe.flavors.saving import save_model as _save

    return _save(python_model, path, flavor=FLAVOR, code_paths=code_paths, artifacts=artifacts,
                 model_config=model_config, **options)


def log_model(
    name: str = "model",
    python_model: PythonModel | str | None = None,
    artifacts: dict[str, str] | None = None,
    code_paths: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    **options: Any,
) -> ModelInfo:
    """Log a custom :class:`PythonModel` into the active run (or a new one); see :func:`save_model`."""
    from fitscribe.flavors.saving import log_model as _log

    if python_model is None:
        raise InvalidValueError("Pass python_model=<a PythonModel instance> to log a custom model.")
    return _log(python_model, name, flavor=FLAVOR, code_paths=code_paths, artifacts=artifacts,
                registered_model_name=registered_model_name, **options)


def set_model(model: Any) -> None:
    """Set the model a models-from-code script defines (as ``mlflow.models.set_model``).

    Call it at the end of the script; loading the model runs the script and takes this model.
    """
    from fitscribe.flavors.code_model import set_model as _set

    _set(model)
