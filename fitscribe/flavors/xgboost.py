"""XGBoost models: ``xgboost.Booster`` and the scikit-learn wrappers, in XGBoost's own format.

Supported classes: ``Booster``, ``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``,
``XGBRFClassifier``, ``XGBRFRegressor`` and ``XGBModel``. The model is written with its own
``save_model`` as UBJSON (``model_format="ubj"``, the default) or JSON (``"json"``) and loaded back
as the same class: a wrapper with ``cls().load_model(path)``, a Booster with
``xgboost.Booster(model_file=path)``.

The folder is laid out as MLflow's xgboost flavor (``model.ubj``, ``flavors.xgboost`` with
``xgb_version``, ``data``, ``model_class``, ``model_format``, ``code``, and a
``flavors.python_function`` block with ``loader_module: mlflow.xgboost``), so
``mlflow.xgboost.load_model`` and ``mlflow.pyfunc.load_model`` read it too, and this module loads
models saved by MLflow's xgboost flavor, including older ones (``data: model.xgb`` without
``model_format``, or without ``model_class``, which means a Booster).

Security: the model file holds only trees and parameters, no code, so loading it runs nothing of
its author's; this makes XGBoost's format a safe choice for models from elsewhere (unlike pickle).
The class recorded in ``model_class`` is mapped onto a fixed list of XGBoost's own classes and is
never imported by name, so an edited ``MLmodel`` cannot make the loader import other code.
A subclass of an XGBoost class is saved as its XGBoost base class (with a warning), since its own
code is not stored.

>>> import xgboost                                                       # doctest: +SKIP
>>> model = xgboost.XGBClassifier(n_estimators=10).fit(X, y)             # doctest: +SKIP
>>> info = fitscribe.flavors.xgboost.log_model(model, "model", input_example=X[:3])  # doctest: +SKIP
>>> fitscribe.flavors.xgboost.load_model(info.model_uri).predict(X)      # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Sequence

from fitscribe.errors import FitscribeWarning, InvalidValueError, NotFoundError
from fitscribe.flavors.base import ModelInfo, SavedFlavor, class_modules
from fitscribe.flavors.environment import env_section
from fitscribe.flavors.model import Model, python_version
from fitscribe.flavors.signature import ModelSignature

__all__ = ["save_model", "log_model", "load_model", "FLAVOR", "MODEL_FORMATS", "MODEL_CLASSES"]

MODEL_FORMATS = ("ubj", "json")
_BOOSTER = "xgboost.core.Booster"

# The only classes the loader creates: fully qualified name (as MLflow writes it) -> class name in
# the ``xgboost`` package. A name not in this table is refused, never imported.
MODEL_CLASSES = {
    _BOOSTER: "Booster",
    "xgboost.sklearn.XGBModel": "XGBModel",
    "xgboost.sklearn.XGBClassifier": "XGBClassifier",
    "xgboost.sklearn.XGBRegressor": "XGBRegressor",
    "xgboost.sklearn.XGBRanker": "XGBRanker",
    "xgboost.sklearn.XGBRFClassifier": "XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor": "XGBRFRegressor",
}
_BY_SHORT_NAME = {short: full for full, short in MODEL_CLASSES.items()}


def _qualified(cls: type) -> str:
    return f"{getattr(cls, '__module__', '')}.{getattr(cls, '__qualname__', '')}"


def _xgboost_class(model: Any) -> str | None:
    """Return the fully qualified name of the first XGBoost class in the model's MRO (no import)."""
    for cls in type(model).__mro__:
        name = _qualified(cls)
        if name in MODEL_CLASSES:
            return name
    return None


def _class_for(model_class: Any, folder: str) -> Any:
    """Map a recorded ``model_class`` onto one of XGBoost's own classes, or refuse it."""
    text = str(model_class) if model_class else _BOOSTER
    module, _, short = text.rpartition(".")
    full = text if text in MODEL_CLASSES else _BY_SHORT_NAME.get(short) if module == "xgboost" else None
    if full is None:
        raise InvalidValueError(
            f"The model at {folder!r} names the class {text!r} in flavors.xgboost.model_class, which is not "
            f"one of XGBoost's own classes ({', '.join(sorted(MODEL_CLASSES))}). fitscribe never imports a "
            "class named in a model file; load the model file with xgboost directly if you trust it."
        )
    import xgboost

    return getattr(xgboost, MODEL_CLASSES[full])


def _user_stacklevel() -> int:
    """Return the ``stacklevel`` that points a warning at the first caller outside fitscribe."""
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _check_format(model_format: Any) -> str:
    if model_format in MODEL_FORMATS:
        return str(model_format)
    hint = ""
    if model_format in ("xgb", "deprecated", "bin"):
        hint = " ('xgb' was MLflow's old default; with xgboost >= 2 'ubj' writes the same UBJSON bytes)"
    raise InvalidValueError(
        f"Unknown model_format {model_format!r} for an XGBoost model; use one of {MODEL_FORMATS}{hint}."
    )


def _to_dmatrix(booster: Any, data: Any) -> Any:
    """Wrap prediction input in a DMatrix, naming an array's columns after the Booster's features."""
    import numpy as np
    import xgboost

    if isinstance(data, xgboost.DMatrix):
        return data
    if hasattr(data, "dtypes") and hasattr(data, "columns"):
        categorical = any(str(dtype) == "category" for dtype in data.dtypes)
        return xgboost.DMatrix(data, enable_categorical=categorical)
    if type(data).__module__.split(".")[0] == "scipy":
        return xgboost.DMatrix(data)
    array = np.asarray(data)
    names = booster.feature_names
    if names is not None and array.ndim == 2 and array.shape[1] == len(names):
        return xgboost.DMatrix(array, feature_names=names, feature_types=booster.feature_types)
    return xgboost.DMatrix(array)


def _accepted(method: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the params ``method`` accepts; warn about the rest (as MLflow's xgboost pyfunc does)."""
    if not params:
        return {}
    import inspect

    parameters = inspect.signature(method).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return dict(params)
    names = [p.name for p in parameters if p.kind is not p.VAR_POSITIONAL]
    unknown = sorted(set(params) - set(names[1:]))
    if unknown:
        warnings.warn(
            f"Ignoring predict params {unknown}: {getattr(method, '__qualname__', method)} does not accept "
            f"them. Accepted: {names[1:]}.",
            FitscribeWarning,
            stacklevel=_user_stacklevel(),
        )
    return {k: v for k, v in params.items() if k not in unknown}


def _predict_fn(native: Any) -> Callable[..., Any]:
    import xgboost

    if isinstance(native, xgboost.Booster):

        def predict_booster(data: Any, params: dict[str, Any] | None = None) -> Any:
            return native.predict(_to_dmatrix(native, data), **_accepted(native.predict, params))

        return predict_booster

    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        return native.predict(data, **_accepted(native.predict, params))

    return predict


def _model_file(folder: str, section: dict[str, Any]) -> tuple[str, str]:
    """Return (relative name, absolute path) of the model file named in the xgboost block."""
    import posixpath

    rel = str(section.get("data") or f"model.{section.get('model_format') or 'xgb'}")
    normal = posixpath.normpath(rel.replace("\\", "/"))
    if normal.startswith(("/", "../")) or normal in ("..", ".") or normal[1:2] == ":" or "\x00" in rel:
        raise InvalidValueError(
            f"The model file {rel!r} named in flavors.xgboost.data of {folder!r} is not a path inside the "
            "model folder; refusing to read it. Fix the 'data' entry in MLmodel (e.g. 'model.ubj')."
        )
    path = os.path.join(folder, *normal.split("/"))
    if not os.path.isfile(path):
        raise NotFoundError(
            f"The XGBoost model file {rel!r} named in flavors.xgboost.data is missing from {folder!r}. "
            "Save or download the whole model folder again."
        )
    return rel, path


def _read_model(cls: Any, path: str) -> Any:
    """Load ``path`` as ``cls``; files not named .ubj/.json are read from bytes (format sniffed)."""
    import xgboost

    source: Any = path
    if os.path.splitext(path)[1].lower() not in (".ubj", ".json"):
        with open(path, "rb") as fh:  # xgboost guesses by extension on paths, with a warning
            source = bytearray(fh.read())
    if cls is xgboost.Booster:
        return xgboost.Booster(model_file=source)
    model = cls()
    model.load_model(source)
    return model


class _XGBoostFlavor:
    name = "xgboost"
    format_version = 1
    frameworks = ("xgboost",)

    def handles(self, model: Any) -> bool:
        return "xgboost" in class_modules(model) and _xgboost_class(model) is not None

    def executes_code(self, descriptor: Model) -> bool:
        """XGBoost's JSON/UBJSON files hold trees and parameters only: loading runs no code."""
        return False

    def save(self, model: Any, folder: str, options: dict[str, Any]) -> SavedFlavor:
        fmt = _check_format(options.get("model_format", "ubj"))
        model_class = self._model_class(model)
        import xgboost

        if model_class != _BOOSTER:
            try:
                model.get_booster()
            except (AttributeError, ValueError) as exc:  # sklearn's NotFittedError is both
                raise InvalidValueError(
                    f"The {type(model).__name__} has not been fitted ({exc}); call fit() before saving it."
                ) from exc
        data = f"model.{fmt}"
        model.save_model(os.path.join(folder, data))
        sections: dict[str, dict[str, Any]] = {
            "python_function": {
                "loader_module": "mlflow.xgboost",
                "python_version": python_version(),
                "data": data,
                "env": env_section(),
            },
            "xgboost": {
                "xgb_version": xgboost.__version__,
                "data": data,
                "model_class": model_class,
                "model_format": fmt,
                "code": options.get("code"),
            },
        }
        distributions = ["xgboost", "numpy"] + ([] if model_class == _BOOSTER else ["scikit-learn"])
        return SavedFlavor(sections, class_modules(model) - {"builtins", ""}, distributions)

    @staticmethod
    def _model_class(model: Any) -> str:
        model_class = _xgboost_class(model)
        if model_class is None:
            raise InvalidValueError(
                f"xgb_model must be an xgboost.Booster or one of XGBoost's scikit-learn models "
                f"({', '.join(sorted(set(MODEL_CLASSES.values()) - {'Booster'}))}); got "
                f"{_qualified(type(model))}. Use fitscribe.flavors.sklearn or pyfunc for other models."
            )
        if _qualified(type(model)) != model_class:
            warnings.warn(
                f"{_qualified(type(model))} is a subclass of {model_class}; XGBoost's format stores no code, "
                f"so the model is saved and loads back as {model_class.rpartition('.')[2]}.",
                FitscribeWarning,
                stacklevel=_user_stacklevel(),
            )
        return model_class

    def example_output(self, model: Any, example: Any) -> Any:
        try:
            return _predict_fn(model)(example)
        except Exception:  # signature inference is best effort: an example the model rejects
            return None

    def load(self, folder: str, descriptor: Model) -> Any:
        section = descriptor.flavors.get("xgboost")
        if not isinstance(section, dict):
            raise InvalidValueError(
                f"The model at {folder!r} has no 'xgboost' flavor block; its flavors are "
                f"{sorted(descriptor.flavors)}. Load it with fitscribe.flavors.pyfunc.load_model."
            )
        rel, path = _model_file(folder, section)
        cls = _class_for(section.get("model_class"), folder)
        import xgboost

        try:
            return _read_model(cls, path)
        except xgboost.core.XGBoostError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidValueError(
                f"The XGBoost model file {rel!r} in {folder!r} could not be read by xgboost "
                f"{xgboost.__version__}: {first}. It is damaged, or in XGBoost's old binary format, which "
                "xgboost 3 no longer reads: load it with xgboost 2.x and save it again as .ubj."
            ) from exc

    def predictor(self, native: Any, folder: str, descriptor: Model) -> Callable[[Any], Any]:
        return _predict_fn(native)


FLAVOR = _XGBoostFlavor()


def save_model(
    xgb_model: Any,
    path: str,
    model_format: str = "ubj",
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
) -> Model:
    """Save an XGBoost Booster or scikit-learn wrapper into a new folder, in XGBoost's own format.

    Args:
        xgb_model: A trained ``xgboost.Booster``, ``XGBClassifier``, ``XGBRegressor``,
            ``XGBRanker``, ``XGBRFClassifier``, ``XGBRFRegressor`` or ``XGBModel``.
        path: A folder that does not exist yet.
        model_format: ``"ubj"`` (UBJSON, default, compact) or ``"json"`` (readable text).
        signature: A ModelSignature; None infers it from ``input_example``; False stores none.
        input_example: A few input rows, saved as ``input_example.json``.
        pip_requirements: Replace the inferred requirements.
        extra_pip_requirements: Add to the inferred requirements.
        metadata: A free-form dict stored in ``MLmodel``.
        code_paths: Local code the model needs, copied into ``code/``.

    Returns:
        The saved ``MLmodel`` descriptor.

    Raises:
        InvalidValueError: ``model_format`` is unknown, the model is not an XGBoost model, or a
            wrapper is not fitted.
    """
    from fitscribe.flavors.saving import save_model as _save

    return _save(
        xgb_model, path, flavor=FLAVOR, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements,
        metadata=metadata, code_paths=code_paths, model_format=model_format,
    )


def log_model(
    xgb_model: Any,
    name: str = "model",
    model_format: str = "ubj",
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Log an XGBoost model into the active run (or a new one); see :func:`save_model`.

    Returns:
        ModelInfo whose ``model_uri`` (``runs:/<run_id>/<name>``) loads the model back.
    """
    from fitscribe.flavors.saving import log_model as _log

    return _log(
        xgb_model, name, flavor=FLAVOR, registered_model_name=registered_model_name, run_id=run_id,
        signature=signature, input_example=input_example, pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements, metadata=metadata, code_paths=code_paths,
        model_format=model_format,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load an XGBoost model (saved by fitscribe or MLflow) as the class it was saved as.

    Returns:
        An ``xgboost.Booster`` or the scikit-learn wrapper (``XGBClassifier``...) that was saved.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: The model file changed since it was saved.
        InvalidValueError: The model is of another flavor, names a class that is not XGBoost's,
            or its file cannot be read by the installed xgboost.
    """
    from fitscribe.flavors.loading import load_native

    return load_native(model_uri, "xgboost", dst_path)
