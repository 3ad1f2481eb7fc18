"""ONNX models: an ``onnx.ModelProto`` (or a ``.onnx`` file) saved as is and run with onnxruntime.

The folder is laid out as MLflow's onnx flavor (``model.onnx``, ``flavors.onnx`` and
``flavors.python_function`` blocks), so ``mlflow.onnx.load_model`` and ``mlflow.pyfunc.load_model``
read it too, and this module loads MLflow's ONNX models. ``load_model`` returns the
``onnx.ModelProto``; :func:`load_session` returns a ready ``onnxruntime.InferenceSession``.

Saving checks the graph with ``onnx.checker.check_model`` and validates ``onnx_session_options``
(keys are ``onnxruntime.SessionOptions`` attributes or ``extra_session_config``), so a bad model or
option fails at save time, not when the model is served.

Predicting through :func:`fitscribe.flavors.pyfunc.load_model` (as MLflow does):

- a dict is the feed (input name -> array); a numpy array feeds a model with exactly one input; a
  DataFrame feeds its ``.values`` to a one-input model, or one column per input name otherwise
  (a 1-D column is reshaped to ``[n, 1]`` when the graph input is ``[n, 1]``);
- float64 becomes float32 where the graph takes ``tensor(float)``, and integers are narrowed (e.g.
  int64 -> int32) or turned into floats only where every value fits;
- a DataFrame input gives a DataFrame (one column per output: a ``[n]``/``[n, 1]`` output becomes a
  plain column, a ``[n, k]`` output a column holding one array per row); any other input gives a
  dict {output name: array}. Outputs without one row per input row come back as that dict too.

Execution providers: the saved list (default ``["CUDAExecutionProvider", "CPUExecutionProvider"]``,
GPU preferred) is filtered to what the installed onnxruntime offers. A list you chose warns
(``FitscribeWarning``) about each provider that is missing; the default list is a preference, so
a machine without CUDA runs it on CPU silently. If the session cannot be created with the
providers, it is created again on CPU, with a warning.

Signatures (MLflow's onnx flavor infers none): with an array or dict ``input_example`` the
signature is read from the graph's inputs and outputs (names, dtypes, shapes); with a DataFrame
example it is inferred from the example, so pyfunc keeps taking and returning DataFrames. (With a
tensor signature pyfunc turns a DataFrame into an array first, so the result is a dict, and a
model with several inputs takes only dicts.) Without an example no signature is stored, as in
MLflow; pass ``signature=graph_signature(model)`` to have one.

Security: an ONNX file holds a graph and weights, no Python code, so loading one runs no code of
its author; the sha256 check on load refuses a file changed since it was saved.

>>> info = fitscribe.flavors.onnx.log_model(proto, "model")                     # doctest: +SKIP
>>> session = fitscribe.flavors.onnx.load_session(info.model_uri)               # doctest: +SKIP
>>> session.run(None, {"input": X.astype("float32")})                           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any, Callable, Mapping, Sequence

from fitscribe.errors import FitscribeError, FitscribeWarning, InvalidValueError, MissingDependencyError, NotFoundError
from fitscribe.flavors import _onnxrt as rt
from fitscribe.flavors.base import ModelInfo, SavedFlavor, class_modules
from fitscribe.flavors.environment import env_section
from fitscribe.flavors.model import Model, python_version
from fitscribe.flavors.signature import ModelSignature, TensorSpec

__all__ = [
    "save_model",
    "log_model",
    "load_model",
    "load_session",
    "graph_signature",
    "convert_sklearn",
    "write_onnx",
    "FLAVOR",
    "MODEL_FILE",
    "ONNX_EXECUTION_PROVIDERS",
]

MODEL_FILE = "model.onnx"
ONNX_EXECUTION_PROVIDERS = rt.ONNX_EXECUTION_PROVIDERS
_OPTIONS = ("onnx_execution_providers", "onnx_session_options", "save_as_external_data")
_CORE_OPTIONS = ("input_example", "code")
_PROTOBUF_LIMIT = 2**31 - 2**24  # a single protobuf file cannot exceed 2 GiB; keep a margin


def _is_path(model: Any) -> bool:
    return isinstance(model, (str, os.PathLike))


def _as_proto(model: Any, load_external_data: bool = True) -> Any:
    """Return ``model`` as an ``onnx.ModelProto``, reading it when it is a path to a ``.onnx`` file."""
    onnx = rt.import_onnx("Saving an ONNX model")
    if isinstance(model, onnx.ModelProto):
        return model
    if not _is_path(model):
        raise InvalidValueError(
            f"The onnx flavor saves an onnx.ModelProto or the path of a .onnx file, got a {type(model).__name__}. "
            "Convert the model to ONNX first (e.g. with skl2onnx, torch.onnx.export or tf2onnx)."
        )
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise NotFoundError(f"No ONNX file at {path!r}; give the path of an existing .onnx file.")
    try:
        return onnx.load(path, load_external_data=load_external_data)
    except Exception as exc:  # protobuf DecodeError, missing external data (OSError, ValueError)
        raise InvalidValueError(f"{path!r} is not a readable ONNX model: {type(exc).__name__}: {exc}") from exc


def _check_file(path: str, what: str) -> None:
    """Run ``onnx.checker.check_model`` on a written file (a path handles external data and > 2 GiB)."""
    onnx = rt.import_onnx("Checking an ONNX model")
    try:
        onnx.checker.check_model(path)
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidValueError(
            f"{what} is not a valid ONNX model: {first}. Fix the graph (onnx.checker.check_model(model) shows "
            "the full report) and save it again."
        ) from exc


def _write(proto: Any, folder: str, external: bool) -> tuple[str, dict[str, str]]:
    """Write ``proto`` into ``folder/model.onnx`` (weights in a side file when ``external``) without changing it.

    Returns:
        The file's path, and its sha256 when written in one piece (for ``SavedFlavor.hashes``).
    """
    onnx = rt.import_onnx("Saving an ONNX model")
    path = os.path.join(folder, MODEL_FILE)
    if external or proto.ByteSize() > _PROTOBUF_LIMIT:
        copy = onnx.ModelProto()
        copy.CopyFrom(proto)  # onnx moves the weights out of the proto it saves: keep the caller's intact
        onnx.save_model(copy, path, save_as_external_data=True)
        return path, {}
    data = proto.SerializeToString()
    with open(path, "wb") as fh:
        fh.write(data)
    return path, {MODEL_FILE: hashlib.sha256(data).hexdigest()}


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """A YAML-safe copy of the session options (plain dicts)."""
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in options.items()}


def _onnx_block(providers: Sequence[str], session_options: Mapping[str, Any] | None) -> dict[str, Any]:
    onnx = rt.import_onnx("Saving an ONNX model")
    block: dict[str, Any] = {"onnx_version": onnx.__version__, "data": MODEL_FILE, "providers": list(providers)}
    if session_options is not None:
        block["onnx_session_options"] = _plain(session_options)
    return block


def write_onnx(
    proto: Any,
    folder: str,
    *,
    providers: Sequence[str] | None = None,
    session_options: Mapping[str, Any] | None = None,
    save_as_external_data: bool = False,
) -> dict[str, Any]:
    """Write ``proto`` as ``model.onnx`` into an existing model folder and return its ``flavors.onnx`` block.

    Used by the sklearn flavor's ``onnx=True``. The graph is checked with ``onnx.checker``. The block
    has no ``code`` key; saving adds it when ``code_paths`` were given.

    Args:
        proto: The ``onnx.ModelProto``.
        folder: The model folder being saved.
        providers: Execution providers to record (default: CUDA, then CPU).
        session_options: onnxruntime session options to record (validated).
        save_as_external_data: Store the weights in a side file (always done above 2 GiB).

    Raises:
        InvalidValueError: The graph is invalid, or a provider or session option is not allowed.
    """
    chosen = rt.check_providers(providers)
    if session_options is not None:
        rt.session_options(rt.import_ort("Checking onnx_session_options"), session_options)
    path, _ = _write(proto, folder, save_as_external_data)
    _check_file(path, "The converted model")
    return _onnx_block(chosen, session_options)


# --- the flavor ----------------------------------------------------------------------------------


def _section(descriptor: Model, folder: str) -> dict[str, Any]:
    section = descriptor.flavors.get("onnx")
    if not isinstance(section, dict):
        raise InvalidValueError(
            f"The model at {folder!r} has no 'onnx' flavor block (flavors: {sorted(descriptor.flavors)}); "
            "load it with fitscribe.flavors.pyfunc.load_model or its own flavor."
        )
    return section


def _model_file(folder: str, section: Mapping[str, Any]) -> str:
    from fitscribe.uri import check_relative_path

    path = os.path.join(folder, *check_relative_path(str(section.get("data", MODEL_FILE)), "ONNX data path").split("/"))
    if not os.path.isfile(path):
        raise NotFoundError(f"The ONNX model file {path!r} is missing; save or download the whole model folder again.")
    return path


class _OnnxFlavor:
    name = "onnx"
    format_version = 1
    frameworks = ("onnx", "onnxruntime")

    def handles(self, model: Any) -> bool:
        if "onnx" in class_modules(model) and type(model).__name__ == "ModelProto":
            return True
        return _is_path(model) and os.fspath(model).lower().endswith(".onnx")

    def executes_code(self, descriptor: Model) -> bool:
        """An ONNX graph holds operators and weights only: loading it runs no code."""
        return False

    def save(self, model: Any, folder: str, options: dict[str, Any]) -> SavedFlavor:
        unknown = sorted(k for k in options if k not in _OPTIONS and k not in _CORE_OPTIONS)
        if unknown:
            raise InvalidValueError(
                f"Unknown option(s) {unknown} for an ONNX model; the onnx flavor takes {list(_OPTIONS)}."
            )
        providers = rt.check_providers(options.get("onnx_execution_providers"))
        session_options = options.get("onnx_session_options")
        if session_options is not None:
            rt.session_options(rt.import_ort("Checking onnx_session_options"), session_options)
        proto = _as_proto(model)
        path, hashes = _write(proto, folder, bool(options.get("save_as_external_data", True)))
        _check_file(path, f"The model {os.fspath(model)!r}" if _is_path(model) else "The ONNX model")
        block = _onnx_block(providers, session_options)
        block["code"] = options.get("code")
        sections: dict[str, dict[str, Any]] = {
            "python_function": {
                "loader_module": "mlflow.onnx",
                "python_version": python_version(),
                "data": MODEL_FILE,
                "env": env_section(),
            },
            "onnx": block,
        }
        return SavedFlavor(sections, {"onnx"}, ["onnx", "onnxruntime", "numpy"], hashes)

    def example_output(self, model: Any, example: Any) -> Any:
        """Run the example through the graph on CPU: ``{output name: array}``, or None (with a warning)."""
        ort = rt.import_ort("Inferring an ONNX model's signature")
        try:
            source = os.fspath(model) if _is_path(model) else _as_proto(model).SerializeToString()
            predictor = rt.OnnxPredictor(ort.InferenceSession(source, providers=[rt.CPU]))
            import numpy as np

            return {n: np.asarray(v) for n, v in zip(predictor.output_names, predictor.run(example))}
        except (FitscribeError, *rt.ort_errors(ort)) as exc:
            warnings.warn(
                f"The input_example could not be run through the ONNX model ({exc}); the signature records "
                "its inputs only.", FitscribeWarning, stacklevel=4,
            )
            return None

    def load(self, folder: str, descriptor: Model) -> Any:
        path = _model_file(folder, _section(descriptor, folder))
        _check_file(path, f"The saved model {path!r}")
        onnx = rt.import_onnx("Loading an ONNX model")
        try:
            return onnx.load(path)
        except Exception as exc:  # protobuf DecodeError, unreadable external data
            raise InvalidValueError(f"Could not read the ONNX model at {path!r}: {type(exc).__name__}: {exc}") from exc

    def predictor(self, native: Any, folder: str, descriptor: Model) -> Callable[[Any], Any]:
        section = _section(descriptor, folder)
        # warnings from make_session skip predictor and pyfunc.load_model to point at the user
        return rt.OnnxPredictor(rt.make_session(_model_file(folder, section), section, None, stacklevel=4))


FLAVOR = _OnnxFlavor()


# --- signatures ----------------------------------------------------------------------------------


def _tensor_spec(value_info: Any) -> TensorSpec | None:
    import numpy as np
    from onnx import helper

    kind = value_info.type.WhichOneof("value")
    tensor = value_info.type.tensor_type
    if kind != "tensor_type" or not tensor.HasField("shape"):
        return None
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    except (KeyError, TypeError, ValueError):  # bfloat16, float8...: no numpy dtype
        return None
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor.shape.dim)
    return TensorSpec(dtype, shape, value_info.name)


def graph_signature(model: Any) -> ModelSignature | None:
    """Return the signature described by an ONNX graph: named tensor inputs and outputs with dtypes and shapes.

    Dimensions without a fixed size (``None``, ``"batch"``) become -1. Outputs are left out when one
    of them is not a plain tensor (e.g. skl2onnx's ZipMap dictionaries).

    Args:
        model: An ``onnx.ModelProto`` or the path of a ``.onnx`` file.

    Returns:
        The signature, or None when an input is not a tensor of known rank and numpy dtype.
    """
    proto = _as_proto(model, load_external_data=False)
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [_tensor_spec(v) for v in proto.graph.input if v.name not in initializers]
    if not inputs or any(spec is None for spec in inputs):
        return None
    outputs = [_tensor_spec(v) for v in proto.graph.output]
    return ModelSignature(inputs, None if any(spec is None for spec in outputs) else outputs)


def _default_signature(model: Any, signature: Any, input_example: Any) -> Any:
    """The graph's signature for an array or dict example; else what the caller gave (the core infers the rest)."""
    if signature is not None or input_example is None or rt.is_frame(input_example):
        return signature
    try:
        return graph_signature(model) or signature
    except FitscribeError:  # not a model: save_model reports it
        return signature


# --- scikit-learn conversion ---------------------------------------------------------------------


def _final_estimators(model: Any) -> list[Any]:
    """The model and what produces its output: the last step of Pipelines, a search's best estimator."""
    found = [model]
    current = model
    for _ in range(8):
        steps = getattr(current, "steps", None)
        nxt = steps[-1][1] if steps else getattr(current, "best_estimator_", None)
        if nxt is None or isinstance(nxt, str):  # "passthrough"
            break
        found.append(nxt)
        current = nxt
    return found


def _n_features(model: Any, input_example: Any) -> int:
    if input_example is not None and not isinstance(input_example, Mapping):
        import numpy as np

        shape = np.shape(input_example)
        if len(shape) == 2:
            return int(shape[1])
    n = getattr(model, "n_features_in_", None)
    if isinstance(n, int):
        return n
    raise InvalidValueError(
        f"Cannot tell how many features the {type(model).__name__} takes (no n_features_in_); pass "
        "input_example=X[:5] to convert it to ONNX."
    )


def convert_sklearn(model: Any, input_example: Any = None) -> Any:
    """Convert a fitted scikit-learn estimator or Pipeline to an ``onnx.ModelProto`` with skl2onnx.

    The graph takes one float32 tensor ``input`` of shape ``[None, n_features]`` (the width of
    ``input_example``, else ``model.n_features_in_``). Classifiers output ``label`` and a
    ``probabilities`` tensor (skl2onnx's ``zipmap`` option off).

    Raises:
        MissingDependencyError: skl2onnx is not installed (``pip install "fitscribe[onnx]"``).
        InvalidValueError: skl2onnx cannot convert the estimator, or the feature count is unknown.
    """
    try:
        import skl2onnx
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        raise MissingDependencyError.for_package(
            "skl2onnx", "onnx", "Converting a scikit-learn model to ONNX (onnx=True)"
        ) from exc
    from sklearn.base import is_classifier

    initial = [("input", FloatTensorType([None, _n_features(model, input_example)]))]
    options = {id(est): {"zipmap": False} for est in _final_estimators(model) if is_classifier(est)}
    try:
        try:
            return skl2onnx.convert_sklearn(model, initial_types=initial, options=options or None)
        except NameError:  # a classifier converter without the zipmap option
            return skl2onnx.convert_sklearn(model, initial_types=initial)
    except (RuntimeError, ValueError, TypeError, NotImplementedError, AttributeError, KeyError, NameError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        raise InvalidValueError(
            f"skl2onnx cannot convert the {type(model).__module__}.{type(model).__qualname__} to ONNX: {first}. "
            "Save it without onnx=True, or register a converter with skl2onnx.update_registered_converter."
        ) from exc


# --- public API ------------------------------------------------------------------------------


def save_model(
    onnx_model: Any,
    path: str,
    onnx_execution_providers: Sequence[str] | None = None,
    onnx_session_options: Mapping[str, Any] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    save_as_external_data: bool = True,
) -> Model:
    """Save an ONNX model into a new folder.

    Args:
        onnx_model: An ``onnx.ModelProto`` or the path of a ``.onnx`` file.
        path: A folder that does not exist yet.
        onnx_execution_providers: onnxruntime providers in order of preference (default
            ``["CUDAExecutionProvider", "CPUExecutionProvider"]``).
        onnx_session_options: ``onnxruntime.SessionOptions`` attributes to set when the model is run,
            e.g. ``{"intra_op_num_threads": 1, "execution_mode": "sequential",
            "graph_optimization_level": 99, "extra_session_config": {...}}``.
        signature: A ModelSignature; None reads it from the graph for an array or dict
            ``input_example`` and infers it from a DataFrame one; False stores none.
        input_example: A few input rows, saved as ``input_example.json``.
        pip_requirements: Replace the inferred requirements.
        extra_pip_requirements: Add to the inferred requirements.
        metadata: A free-form dict stored in ``MLmodel``.
        code_paths: Local code to keep with the model, copied into ``code/``.
        save_as_external_data: Store weights over 1 kB in a side file next to ``model.onnx`` (as
            MLflow does by default; needed above 2 GiB).

    Returns:
        The saved ``MLmodel`` descriptor.

    Raises:
        InvalidValueError: The graph fails ``onnx.checker``, or a provider or session option is not allowed.
    """
    from fitscribe.flavors.saving import save_model as _save

    return _save(
        onnx_model, path, flavor=FLAVOR, signature=_default_signature(onnx_model, signature, input_example),
        input_example=input_example, pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements, metadata=metadata, code_paths=code_paths,
        onnx_execution_providers=onnx_execution_providers, onnx_session_options=onnx_session_options,
        save_as_external_data=save_as_external_data,
    )


def log_model(
    onnx_model: Any,
    name: str = "model",
    onnx_execution_providers: Sequence[str] | None = None,
    onnx_session_options: Mapping[str, Any] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    code_paths: Sequence[str] | None = None,
    save_as_external_data: bool = True,
    run_id: str | None = None,
) -> ModelInfo:
    """Log an ONNX model into the active run (or a new one); see :func:`save_model`.

    Returns:
        ModelInfo whose ``model_uri`` (``runs:/<run_id>/<name>``) loads the model back.
    """
    from fitscribe.flavors.saving import log_model as _log

    return _log(
        onnx_model, name, flavor=FLAVOR, registered_model_name=registered_model_name, run_id=run_id,
        signature=_default_signature(onnx_model, signature, input_example), input_example=input_example,
        pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements, metadata=metadata,
        code_paths=code_paths, onnx_execution_providers=onnx_execution_providers,
        onnx_session_options=onnx_session_options, save_as_external_data=save_as_external_data,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load an ONNX model (saved by fitscribe's or MLflow's onnx flavor, or by sklearn with ``onnx=True``).

    Returns:
        The ``onnx.ModelProto``, checked with ``onnx.checker``.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: A model file changed since it was saved.
        InvalidValueError: The model has no ONNX copy, or the file is not a valid ONNX model.
    """
    from fitscribe.flavors.loading import load_native

    return load_native(model_uri, "onnx", dst_path)


def load_session(model_uri: str, dst_path: str | None = None, providers: Sequence[str] | None = None) -> Any:
    """Load a saved ONNX model straight into an ``onnxruntime.InferenceSession``.

    The session uses the saved execution providers (filtered to the installed ones, see the module
    docstring) and session options. Works for sklearn models saved with ``onnx=True`` too.

    Args:
        model_uri: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, a local path...
        dst_path: Download into this folder instead of a temporary one.
        providers: Use these execution providers instead of the saved ones.

    Raises:
        NotFoundError: Nothing is at ``model_uri``.
        ModelIntegrityError: A model file changed since it was saved.
        InvalidValueError: The model has no ONNX copy, or onnxruntime cannot load it.
    """
    from fitscribe.flavors.loading import open_model

    opened = open_model(model_uri, "onnx", dst_path)
    section = _section(opened.descriptor, opened.folder)
    return rt.make_session(_model_file(opened.folder, section), section, providers, stacklevel=3)
