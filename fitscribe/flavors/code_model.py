"""Custom models saved by MLflow: pickled ``mlflow.pyfunc.PythonModel`` subclasses and models-from-code.

A pickled MLflow custom model refers to MLflow's base classes (``mlflow.pyfunc.model.PythonModel``,
``PythonModelContext``); :func:`load_pickled_model` reads those names as fitscribe's own classes, so
loading needs no MLflow and imports none (MLflow's import costs seconds). Any other MLflow name in
the pickle still needs MLflow, and the error says so.

A model-from-code is a Python script saved in the model's root folder (MLflow's ``python_function``
block: ``loader_module: mlflow.pyfunc.loaders.code_model``, ``model_code_path``: the script's path
when it was saved, of which only the file name is used). Loading runs the script as a new module;
the script hands over its model with ``set_model(obj)``: fitscribe's
(:func:`fitscribe.flavors.pyfunc.set_model`) or MLflow's ``mlflow.models.set_model``. Where MLflow is
not installed, a script's ``import mlflow`` (and ``mlflow.pyfunc`` / ``mlflow.models``) is served,
while the script runs only, by a stand-in exposing fitscribe's ``PythonModel``,
``PythonModelContext`` and ``set_model``; it is removed from ``sys.modules`` afterwards.

Security: both run the model author's code. fitscribe checks the files first (see
:mod:`fitscribe.flavors.loading`), and warns when nothing vouches for them.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
import pickle
import sys
import types
import uuid
from typing import Any, Iterator

from fitscribe.errors import InvalidValueError, MissingDependencyError
from fitscribe.flavors.model import Model

__all__ = ["load_pickled_model", "load_code_model", "save_code_model", "set_model", "CODE_MODEL_LOADER"]

CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
"""``loader_module`` of MLflow's python_function block for a model-from-code."""
# MLflow's base classes, read as fitscribe's: (module, name) -> attribute of fitscribe.flavors.pyfunc.
_MLFLOW_CLASSES = {
    ("mlflow.pyfunc.model", "PythonModel"): "PythonModel",
    ("mlflow.pyfunc", "PythonModel"): "PythonModel",
    ("mlflow.pyfunc.model", "PythonModelContext"): "PythonModelContext",
    ("mlflow.pyfunc", "PythonModelContext"): "PythonModelContext",
    ("mlflow.models.signature", "_TypeHints"): "_TypeHints",  # the type hints MLflow caches on the instance
}
_CAPTURE: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("fitscribe_code_model", default=None)


class _MlflowAwareUnpickler(pickle.Unpickler):
    """An unpickler that reads MLflow's PythonModel base classes as fitscribe's."""

    def find_class(self, module: str, name: str) -> Any:
        """Return fitscribe's class for MLflow's base classes, else the class the pickle names."""
        ours = _MLFLOW_CLASSES.get((module, name))
        if ours is not None:
            from fitscribe.flavors import pyfunc

            return getattr(pyfunc, ours)
        return super().find_class(module, name)


def load_pickled_model(path: str, folder: str) -> Any:
    """Unpickle a custom model saved by fitscribe or MLflow (``python_model.pkl``).

    Raises:
        MissingDependencyError: The pickle needs a module that is not installed (e.g. other parts of MLflow).
    """
    import cloudpickle  # noqa: F401  # the pickle refers to cloudpickle's helpers

    try:
        with open(path, "rb") as fh:
            return _MlflowAwareUnpickler(fh).load()
    except ModuleNotFoundError as exc:
        missing = exc.name or str(exc)
        hint = "pip install mlflow-skinny" if missing.split(".")[0] == "mlflow" else f"pip install {missing.split('.')[0]}"
        raise MissingDependencyError(
            f"The custom model at {folder!r} needs the module {missing!r}, which is not installed: {hint} "
            "(or see the model's requirements.txt).", package=missing.split(".")[0],
        ) from exc


def set_model(model: Any) -> None:
    """Hand the model defined by a models-from-code script to the loader running the script.

    Args:
        model: A :class:`~fitscribe.flavors.pyfunc.PythonModel` (or MLflow's), or a function taking
            the model input.

    Raises:
        InvalidValueError: ``model`` has no ``predict`` and is not callable.
    """
    if not (callable(getattr(model, "predict", None)) or callable(model)):
        raise InvalidValueError(
            f"set_model needs a PythonModel or a callable, got {type(model).__name__}."
        )
    captured = _CAPTURE.get()
    if captured is not None:
        captured.append(model)


def save_code_model(script: str, folder: str, options: dict[str, Any]) -> Any:
    """Copy a models-from-code script into the model's root and describe it as MLflow does.

    The script is not run while saving; its top-level imports become the model's requirements.

    Raises:
        InvalidValueError: The script does not exist or is not a ``.py`` file.
    """
    import shutil

    from fitscribe.flavors.base import SavedFlavor
    from fitscribe.flavors.environment import env_section
    from fitscribe.flavors.model import python_version
    from fitscribe.flavors.pyfunc import _copy_artifacts

    if not os.path.isfile(script) or not script.endswith(".py"):
        raise InvalidValueError(f"python_model={script!r} is not a Python file; give the path of a .py script.")
    shutil.copy2(script, os.path.join(folder, os.path.basename(script)))
    section: dict[str, Any] = {
        "loader_module": CODE_MODEL_LOADER,
        "model_code_path": os.path.abspath(script),
        "artifacts": _copy_artifacts(folder, options.get("artifacts") or {}),
        "python_version": python_version(),
        "env": env_section(),
        "streamable": False,
    }
    if options.get("model_config"):
        section["config"] = dict(options["model_config"])
    return SavedFlavor({"python_function": section}, _imports(script))


def _imports(script: str) -> set[str]:
    """Top-level module names the script imports (for its requirements)."""
    import ast

    with open(script, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), script)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def load_code_model(folder: str, descriptor: Model, section: dict[str, Any]) -> Any:
    """Run a model-from-code script saved in ``folder`` and return the model it set.

    Raises:
        InvalidValueError: The script is missing, fails, or sets no model.
    """
    name = os.path.basename(str(section["model_code_path"]).replace("\\", "/"))
    path = descriptor.model_file(folder, name)
    if not os.path.isfile(path):
        raise InvalidValueError(f"The model-from-code at {folder!r} lacks its script {name!r}.")
    captured: list[Any] = []
    token = _CAPTURE.set(captured)
    module_name = f"fitscribe_code_model_{uuid.uuid4().hex}"
    try:
        with _mlflow_stand_in():
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # the author's script: report it with the model's path
                raise InvalidValueError(
                    f"Running the model script {name!r} of the model at {folder!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
            found = captured[-1] if captured else _mlflow_set_model()
    finally:
        _CAPTURE.reset(token)
    if found is None:
        raise InvalidValueError(
            f"The model script {name!r} of the model at {folder!r} ran but set no model; it must call set_model(model)."
        )
    return found


def _mlflow_set_model() -> Any:
    """The model a script gave to the real MLflow's ``set_model`` (where MLflow is installed), or None."""
    module = sys.modules.get("mlflow.models.model")
    return getattr(module, "__mlflow_model__", None) if isinstance(module, types.ModuleType) else None


@contextlib.contextmanager
def _mlflow_stand_in() -> Iterator[None]:
    """While a script runs: reset the real MLflow's captured model, or serve ``import mlflow`` without it."""
    if "mlflow" in sys.modules or importlib.util.find_spec("mlflow") is not None:
        real = sys.modules.get("mlflow.models.model")
        if real is not None:
            real.__dict__["__mlflow_model__"] = None
        yield
        return
    from fitscribe.flavors import pyfunc

    top = types.ModuleType("mlflow", "fitscribe's stand-in for MLflow while a model script runs.")
    top.__path__ = []  # a package, so "import mlflow.pyfunc" finds the entries below
    models = types.ModuleType("mlflow.models")
    models.set_model = set_model  # type: ignore[attr-defined]
    top.pyfunc, top.models = pyfunc, models  # type: ignore[attr-defined]
    added = {"mlflow": top, "mlflow.pyfunc": pyfunc, "mlflow.models": models}
    sys.modules.update(added)
    try:
        yield
    finally:
        for key, value in added.items():
            if sys.modules.get(key) is value:
                del sys.modules[key]
