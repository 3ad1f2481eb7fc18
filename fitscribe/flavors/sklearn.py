"""scikit-learn models: any estimator or Pipeline, saved with cloudpickle (default) or pickle.

The folder is laid out as MLflow's sklearn flavor (``model.pkl``, ``flavors.sklearn`` and
``flavors.python_function`` blocks), so ``mlflow.sklearn.load_model`` and
``mlflow.pyfunc.load_model`` read it too, and this module loads MLflow's sklearn models.
``onnx=True`` also converts the model with skl2onnx into ``model.onnx`` in the same folder, loadable
with :func:`fitscribe.flavors.onnx.load_model`.

Classes defined in your own local modules (not installed packages) are pickled by value with
cloudpickle, so the model loads in another process or on another machine without your code.

Security: pickle files run code when loaded. Load only models you or a trusted colleague saved;
the sha256 check on load refuses a file changed since it was saved, but cannot vouch for its author.
For models from elsewhere prefer ONNX (``onnx=True``), which holds no code.

>>> from sklearn.linear_model import LogisticRegression     # doctest: +SKIP
>>> info = fitscribe.flavors.sklearn.log_model(LogisticRegression().fit(X, y), "model")  # doctest: +SKIP
>>> fitscribe.flavors.sklearn.load_model(info.model_uri).predict(X)                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any, Callable, Iterator, Sequence

from fitscribe.errors import InvalidValueError, MissingDependencyError
from fitscribe.flavors.base import ModelInfo, SavedFlavor, class_modules
from fitscribe.flavors.environment import INSPECTOR, env_section
from fitscribe.flavors.model import Model, ThreadedHashWriter, python_version
from fitscribe.flavors.signature import ModelSignature

__all__ = ["save_model", "log_model", "load_model", "FLAVOR", "SERIALIZATION_FORMATS"]

MODEL_FILE = "model.pkl"
SKOPS_FILE = "model.skops"
SERIALIZATION_FORMATS = ("cloudpickle", "pickle", "skops")
# Protocol 5 (Python 3.8+, as MLflow's cloudpickle default) passes arrays to the writer as buffer
# views; protocol 4, Python 3.11's default, copies each one into a bytes object first (pickling a
# 9.6 MB forest took 9.6 ms instead of 3.3 ms).
PICKLE_PROTOCOL = 5


def _estimators(model: Any, depth: int = 0) -> Iterator[Any]:
    """Yield the model and every estimator nested in its params (Pipeline steps, meta-estimators)."""
    yield model
    if depth > 6 or not hasattr(model, "get_params"):
        return
    try:
        params = model.get_params(deep=False)
    except Exception:  # a broken get_params must not stop saving
        return
    for value in params.values():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            item = item[-1] if isinstance(item, tuple) and item else item
            if hasattr(item, "get_params") or hasattr(item, "fit"):
                yield from _estimators(item, depth + 1)


def _model_modules(model: Any, estimators: list[Any] | None = None) -> set[str]:
    modules: set[str] = set()
    for est in _estimators(model) if estimators is None else estimators:
        modules |= class_modules(est)
    return modules - {"builtins", ""}


def _local_modules(estimators: list[Any]) -> list[Any]:
    """Modules of the estimators' classes that belong to no installed distribution (the user's code)."""
    found = []
    for est in estimators:
        for cls in type(est).__mro__:
            name = getattr(cls, "__module__", "") or ""
            module = sys.modules.get(name)
            if module is None or name == "__main__" or name.split(".")[0] in sys.stdlib_module_names:
                continue
            if INSPECTOR.distribution_of(name.split(".")[0]) is None and module not in found:
                found.append(module)
    return found


class _SklearnFlavor:
    name = "sklearn"
    format_version = 1
    frameworks = ("scikit-learn",)

    def handles(self, model: Any) -> bool:
        return "sklearn" in class_modules(model) or (hasattr(model, "fit") and hasattr(model, "get_params"))

    def save(self, model: Any, folder: str, options: dict[str, Any]) -> SavedFlavor:
        fmt = options.get("serialization_format", "cloudpickle")
        if fmt not in SERIALIZATION_FORMATS:
            raise InvalidValueError(
                f"Unknown serialization_format {fmt!r} for a scikit-learn model; use one of {SERIALIZATION_FORMATS}."
            )
        import sklearn

        estimators = list(_estimators(model))
        trusted = None
        if fmt == "skops":
            filename, trusted = SKOPS_FILE, _dump_skops(model, folder, options.get("skops_trusted_types"))
            digest = None
        else:
            filename = MODEL_FILE
            with open(os.path.join(folder, MODEL_FILE), "wb") as fh, ThreadedHashWriter(fh) as writer:
                if fmt == "cloudpickle":
                    _dump_cloudpickle(model, _local_modules(estimators), writer)
                else:
                    pickle.dump(model, writer, protocol=PICKLE_PROTOCOL)
                digest = writer.finish()
        predict_fn = options.get("predict_fn", "predict")
        sections: dict[str, dict[str, Any]] = {
            "python_function": {
                "model_path": filename,
                "predict_fn": predict_fn,
                "loader_module": "mlflow.sklearn",
                "python_version": python_version(),
                "env": env_section(),
            },
            "sklearn": {
                "pickled_model": filename,
                "sklearn_version": sklearn.__version__,
                "serialization_format": fmt,
                "code": options.get("code"),
            },
        }
        if fmt == "skops":
            sections["sklearn"]["skops_trusted_types"] = trusted
        distributions = ["scikit-learn", "numpy", "scipy"] + ({"cloudpickle": ["cloudpickle"], "skops": ["skops"]}.get(fmt) or [])
        if options.get("onnx"):
            from fitscribe.flavors import onnx as onnx_flavor

            proto = onnx_flavor.convert_sklearn(model, options.get("input_example"))
            sections["onnx"] = onnx_flavor.write_onnx(proto, folder)
            distributions += ["onnx", "onnxruntime"]
        return SavedFlavor(sections, _model_modules(model, estimators), distributions, {filename: digest} if digest else {})

    def executes_code(self, descriptor: Model) -> bool:
        """Pickle and cloudpickle run code when loaded; skops only builds trusted types.

        A skops model whose ``MLmodel`` trusts extra types counts as running code: whoever wrote
        ``MLmodel`` chose them.
        """
        section = descriptor.flavors.get("sklearn") or {}
        return section.get("serialization_format") != "skops" or bool(section.get("skops_trusted_types"))

    def example_output(self, model: Any, example: Any) -> Any:
        try:
            return model.predict(example)
        except Exception:  # signature inference is best effort: an example the model rejects
            return None

    def load(self, folder: str, descriptor: Model) -> Any:
        section = descriptor.flavors.get("sklearn")
        if section is None:
            raise InvalidValueError(f"The model at {folder!r} has no 'sklearn' flavor block.")
        fmt = section.get("serialization_format", "cloudpickle")
        path = descriptor.model_file(folder, str(section.get("pickled_model", MODEL_FILE)))
        if fmt == "skops":
            try:
                import skops.io as sio
            except ImportError as exc:
                raise MissingDependencyError(
                    f"The model at {folder!r} was saved by MLflow in the skops format, which needs the "
                    "package 'skops': pip install skops", package="skops",
                ) from exc
            return _load_skops(sio, path, section.get("skops_trusted_types"), folder)
        if fmt not in SERIALIZATION_FORMATS:
            raise InvalidValueError(f"The model at {folder!r} uses the unknown serialization format {fmt!r}.")
        with open(path, "rb") as fh:
            if fmt == "cloudpickle":
                import cloudpickle

                return cloudpickle.load(fh)
            return pickle.load(fh)

    def predictor(self, native: Any, folder: str, descriptor: Model) -> Callable[[Any], Any]:
        name = (descriptor.flavors.get("python_function") or {}).get("predict_fn", "predict")
        method = getattr(native, str(name), None)
        if method is None:
            raise InvalidValueError(f"The loaded model has no method {name!r} (predict_fn in MLmodel).")
        def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
            return method(data)  # scikit-learn's predict takes no inference params (MLflow ignores them too)

        return predict


def _dump_skops(model: Any, folder: str, trusted: Sequence[str] | None) -> list[str] | None:
    """Write ``model.skops``; refuse a model holding types skops does not trust unless listed in ``trusted``."""
    try:
        import skops.io as sio
    except ImportError as exc:
        raise MissingDependencyError(
            'serialization_format="skops" needs the package skops: pip install "fitscribe[skops]"',
            extra="skops", package="skops",
        ) from exc
    path = os.path.join(folder, SKOPS_FILE)
    sio.dump(model, path)
    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted or ()))
    if untrusted:
        os.remove(path)
        raise InvalidValueError(
            f"The model holds types skops does not trust by default: {untrusted}. If you trust them, pass "
            "skops_trusted_types=[...] listing them (they are recorded in MLmodel and trusted again on load), "
            'or use serialization_format="cloudpickle".'
        )
    return sorted(trusted) if trusted else None


def _load_skops(sio: Any, path: str, trusted: Any, folder: str) -> Any:
    """Load a skops file trusting only skops' defaults plus the types recorded in MLmodel."""
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path, trusted=[str(t) for t in trusted or ()])
    except UntrustedTypesFoundException as exc:
        raise InvalidValueError(
            f"The skops model at {folder!r} holds types that are not trusted: {exc}. fitscribe loads only "
            "skops' default types and those listed in flavors.sklearn.skops_trusted_types."
        ) from exc


def _dump_cloudpickle(model: Any, local: list[Any], fh: Any) -> None:
    import cloudpickle

    for module in local:
        cloudpickle.register_pickle_by_value(module)
    try:
        cloudpickle.dump(model, fh, protocol=PICKLE_PROTOCOL)
    finally:
        for module in local:
            cloudpickle.unregister_pickle_by_value(module)


FLAVOR = _SklearnFlavor()


def save_model(
    sk_model: Any,
    path: str,
    serialization_format: str = "cloudpickle",
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    onnx: bool = False,
    predict_fn: str = "predict",
    skops_trusted_types: Sequence[str] | None = None,
) -> Model:
    """Save a scikit-learn estimator or Pipeline into a new folder.

    Args:
        sk_model: The fitted estimator.
        path: A folder that does not exist yet.
        serialization_format: ``"cloudpickle"`` (default), ``"pickle"``, or ``"skops"`` (MLflow 3's
            default; no pickle: loading builds only trusted types; needs ``fitscribe[skops]``).
        signature: A ModelSignature; None infers it from ``input_example``; False stores none.
        input_example: A few input rows, saved as ``input_example.json``.
        pip_requirements: Replace the inferred requirements.
        extra_pip_requirements: Add to the inferred requirements.
        metadata: A free-form dict stored in ``MLmodel``.
        code_paths: Local code the model needs, copied into ``code/``.
        onnx: Also write an ONNX copy (needs ``fitscribe[onnx]``).
        predict_fn: The method pyfunc's ``predict`` calls (e.g. ``"predict_proba"``).
        skops_trusted_types: With ``"skops"``: extra types to trust (e.g. your own estimator class);
            saving fails listing any other type skops does not trust.

    Returns:
        The saved ``MLmodel`` descriptor.
    """
    from fitscribe.flavors.saving import save_model as _save

    return _save(
        sk_model, path, flavor=FLAVOR, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements,
        metadata=metadata, code_paths=code_paths, serialization_format=serialization_format,
        onnx=onnx, predict_fn=predict_fn, skops_trusted_types=skops_trusted_types,
    )


def log_model(
    sk_model: Any,
    name: str = "model",
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    onnx: bool = False,
    predict_fn: str = "predict",
    run_id: str | None = None,
    skops_trusted_types: Sequence[str] | None = None,
) -> ModelInfo:
    """Log a scikit-learn model into the active run (or a new one); see :func:`save_model`.

    Returns:
        ModelInfo whose ``model_uri`` (``runs:/<run_id>/<name>``) loads the model back.
    """
    from fitscribe.flavors.saving import log_model as _log

    return _log(
        sk_model, name, flavor=FLAVOR, registered_model_name=registered_model_name, run_id=run_id,
        signature=signature, input_example=input_example, pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements, metadata=metadata, code_paths=code_paths,
        serialization_format=serialization_format, onnx=onnx, predict_fn=predict_fn,
        skops_trusted_types=skops_trusted_types,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load a scikit-learn model (saved by fitscribe or MLflow) as the native estimator.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: The model file changed since it was saved.
        InvalidValueError: The model is of another flavor.
    """
    from fitscribe.flavors.loading import load_native

    return load_native(model_uri, "sklearn", dst_path)
